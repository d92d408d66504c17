"""Frechet distance between generated and validation images, in one of two named feature spaces.

FID = ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2}) between Gaussians fitted to the features
of two image sets (Heusel et al. 2017; :func:`frechet_distance`, the pytorch-fid computation).

Feature spaces (method.md, "Evaluation"), reported under different names so they are never confused:

- ``fid_inception``: torch-fidelity's Inception-v3 (2048-d pool features), only with a local
  weights file (``inception_weights``; none can be downloaded here). A file that does not load
  raises :class:`FIDError` before any work (:func:`check_inception_weights`).
- ``fid_classifier``: the 128-d penultimate layer of a small CNN (:class:`radae.classifier.FeatureCNN`)
  trained by radae on the dataset's training split, once per dataset: cached in
  ``$XDG_CACHE_HOME/radae/features/<dataset>-<key>.pt`` (key = hash of the training data and
  settings) beside a ``.sha256`` checksum; a cache that fails its checksum is rebuilt with a warning.
  A sweep builds it once and hands every trial the same file (:mod:`radae.store.fidnet`), which
  :func:`checked_feature_space` checks against its sha256 before use.

Both go through ``torch_fidelity.calculate_metrics`` (the classifier registered as the feature
extractor ``radae-classifier``), fed by in-memory datasets of uint8 3-channel images. Where
torch-fidelity is not installed (the GPU machine), ``fid_classifier`` uses the same features and
:func:`frechet_distance` directly. Protocol: ``samples`` images from the prior, decoded, against
the validation images, ``runs`` times; mean and std over runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radae.checkpoint import write_atomic, write_text_atomic
from radae.classifier import FeatureCNN, train_feature_net
from radae.precision import autocast, network_precision

FEATURE_NET_VERSION = 1
STATS_VERSION = 1  # of the cached reference statistics (reference_statistics)
EXTRACTOR_NAME = "radae-classifier"


class FIDError(ValueError):
    """FID cannot be computed as asked (e.g. Inception weights that do not load); names the file."""


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}) for Gaussians N(mu1, S1), N(mu2, S2), in float64.

    mu: (F,), sigma: (F, F), symmetric PSD. tr((S1 S2)^{1/2}) is computed as the sum of the square
    roots of the eigenvalues of the symmetric PSD matrix S1^{1/2} S2 S1^{1/2}, which has the same
    spectrum as S1 S2: numpy's ``eigh`` only, no complex ``sqrtm`` residue, stable for singular S
    (features with zero variance), and no SciPy needed (the GPU machine has none).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"frechet_distance: shapes do not match: {mu1.shape} {s1.shape} vs {mu2.shape} {s2.shape}")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    s1_half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = s1_half @ s2 @ s1_half
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def gaussian_statistics(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) of features (N, F), in float64."""
    f = features.double().cpu().numpy()
    return f.mean(axis=0), np.cov(f, rowvar=False)


class ImageTensorDataset(torch.utils.data.Dataset):
    """Images (N, C, H, W), uint8 or floats in [0, 1], served as uint8 (3, H, W) as torch-fidelity expects."""

    def __init__(self, images: torch.Tensor) -> None:
        if images.dtype != torch.uint8:
            images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
        self.images = images.cpu()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        img = self.images[i]
        return img.expand(3, -1, -1).contiguous() if img.shape[0] == 1 else img


def _to_net_input(x: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> floats in [0, 1] with the feature net's channel count."""
    x = x.float() / 255.0
    return x.mean(dim=1, keepdim=True) if channels == 1 and x.shape[1] == 3 else x


def load_feature_net(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> FeatureCNN:
    """A cached :class:`FeatureCNN` (state dict with its image shape and class count)."""
    state = torch.load(path, map_location=device, weights_only=True)
    net = FeatureCNN(tuple(state["image_shape"]), int(state["num_classes"]))
    net.load_state_dict(state["model"])
    return net.to(device).eval().requires_grad_(False)


def _extractor_class():
    """torch-fidelity's extractor class around a cached :class:`FeatureCNN` (import-time optional)."""
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    class ClassifierFeatureExtractor(FeatureExtractorBase):
        def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
            super().__init__(name, features_list)
            if feature_extractor_weights_path is None:
                raise FIDError("the radae-classifier extractor needs feature_extractor_weights_path")
            self.net = load_feature_net(feature_extractor_weights_path)

        @staticmethod
        def get_provided_features_list():
            return ("features",)

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return "features"

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return None

        def forward(self, x):
            return (self.net.features(_to_net_input(x, self.net.image_shape[0])).float(),)

    return ClassifierFeatureExtractor


def _register_extractor() -> None:
    """Register ``radae-classifier`` with torch-fidelity once (registering twice raises there)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    if EXTRACTOR_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(EXTRACTOR_NAME, _extractor_class())


@dataclass(frozen=True)
class FeatureSpace:
    """Where FID features come from: ``metric`` names the result (fid_classifier / fid_inception)."""

    metric: str
    extractor: str
    layer: str
    weights_path: str


def check_inception_weights(path: str | os.PathLike[str]) -> FeatureSpace:
    """The Inception-v3 feature space, after checking that ``path`` loads into it (else FIDError)."""
    if not Path(path).is_file():
        raise FIDError(f"inception weights {path} do not exist")
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    except ImportError as err:
        raise FIDError(f"fid_inception needs torch-fidelity, which is not installed ({err})") from err
    except Exception as err:  # unpickling, truncation, wrong keys or shapes: all mean "not usable"
        raise FIDError(f"inception weights {path} do not load into torch-fidelity's Inception-v3: {err}") from err
    return FeatureSpace("fid_inception", "inception-v3-compat", "2048", str(path))


def feature_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/radae/features`` (default ``~/.cache/radae/features``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "radae" / "features"


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 (hex) of a feature network file: the identity a sweep records in every row."""
    return _sha256_file(Path(path))


def checked_feature_space(path: str | os.PathLike[str], sha256: str) -> FeatureSpace:
    """The ``fid_classifier`` space of the feature network file ``path``, after checking it.

    Raises :class:`FIDError` naming the file when it is missing, its sha256 is not ``sha256``
    (corrupt, truncated or another network) or it does not load as a :class:`FeatureCNN`.
    """
    path = Path(path)
    if not path.is_file():
        raise FIDError(f"FID feature network {path} does not exist")
    actual = _sha256_file(path)
    if actual != sha256:
        raise FIDError(f"FID feature network {path} has sha256 {actual}, expected {sha256}: corrupt or another network")
    try:
        load_feature_net(path)
    except Exception as err:  # unpickling, missing keys, wrong shapes: all mean "not usable"
        raise FIDError(f"FID feature network {path} does not load: {err}") from err
    return FeatureSpace("fid_classifier", EXTRACTOR_NAME, "features", str(path))


def classifier_feature_space(
    name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    epochs: int = 2,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> FeatureSpace:
    """The ``fid_classifier`` feature space of a dataset: a cached :class:`FeatureCNN`, trained on first use.

    ``images`` uint8 (N, C, H, W) and ``labels`` (N,): the training split. The cache key hashes
    them with the settings, so other data or settings train another network.
    """
    settings = {"version": FEATURE_NET_VERSION, "name": name, "shape": list(images.shape), "classes": num_classes}
    settings |= {"epochs": epochs, "seed": seed}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(images.cpu().numpy().tobytes())
    digest.update(labels.cpu().numpy().tobytes())
    folder = Path(cache_dir) if cache_dir is not None else feature_cache_dir()
    path = folder / f"{name}-{digest.hexdigest()[:16]}.pt"
    checksum = path.with_name(path.name + ".sha256")
    if path.exists():
        if checksum.exists() and checksum.read_text().strip() == _sha256_file(path):
            return FeatureSpace("fid_classifier", EXTRACTOR_NAME, "features", str(path))
        warnings.warn(f"feature network cache {path} fails its checksum; rebuilding it", stacklevel=2)
    log(f"training the FID feature network for {name} on {len(images)} images ({epochs} epochs) -> {path}")
    net = train_feature_net(images, labels, num_classes, epochs=epochs, seed=seed)
    state = {"model": {k: v.cpu() for k, v in net.state_dict().items()}}
    state |= {"image_shape": list(images.shape[1:]), "num_classes": num_classes, "settings": settings}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: torch.save(state, tmp))
    write_text_atomic(checksum, _sha256_file(path) + "\n")
    return FeatureSpace("fid_classifier", EXTRACTOR_NAME, "features", str(path))


@torch.no_grad()
def generate(model, n: int, *, device: torch.device, seed: int, batch_size: int = 1000) -> torch.Tensor:
    """n images from the model's prior, decoded, as uint8 (n, C, H, W) on the CPU."""
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    for begin in range(0, n, batch_size):
        x = model.sample(min(batch_size, n - begin), gen)
        out.append((x.clamp(0, 1) * 255).round().to(torch.uint8).cpu())
    return torch.cat(out)


def _fid_torch_fidelity(space: FeatureSpace, fake: torch.Tensor, real: torch.Tensor, device: torch.device) -> float:
    import torch_fidelity

    _register_extractor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = torch_fidelity.calculate_metrics(
            input1=ImageTensorDataset(fake),
            input2=ImageTensorDataset(real),
            fid=True,
            feature_extractor=space.extractor,
            feature_layer_fid=space.layer,
            feature_extractor_weights_path=space.weights_path,
            cuda=device.type == "cuda",
            batch_size=500,
            save_cpu_ram=True,
            cache=False,
            verbose=False,
        )
    return float(metrics["frechet_inception_distance"])


@torch.no_grad()
def classifier_features(space: FeatureSpace, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Float32 features (N, F) of ``images`` (uint8 or floats in [0, 1]) under the classifier feature network."""
    if space.metric != "fid_classifier":
        raise FIDError(f"{space.metric} needs torch-fidelity, which is not installed")
    net = load_feature_net(space.weights_path, device)
    ds = ImageTensorDataset(images).images
    chunks = [ds[i : i + 500].to(device) for i in range(0, len(ds), 500)]
    return torch.cat([net.features(_to_net_input(c.expand(-1, 3, -1, -1), net.image_shape[0])).float() for c in chunks])


def _fid_direct(space: FeatureSpace, fake: torch.Tensor, real: torch.Tensor, device: torch.device) -> float:
    """The same FID without torch-fidelity (classifier features only)."""
    fake_stats = gaussian_statistics(classifier_features(space, fake, device))
    return frechet_distance(*fake_stats, *gaussian_statistics(classifier_features(space, real, device)))


def reference_statistics(
    space: FeatureSpace,
    real: torch.Tensor,
    device: torch.device,
    *,
    precision: str = "fp32",
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the classifier features of ``real`` (the validation images), cached on disk.

    They depend only on the feature network, the images and ``precision``, not on the model being
    scored, so a sweep computes them once per machine instead of once per FID run of every trial.
    The file ``<cache>/stats/<key>.npz`` is keyed by the sha256 of the network file and of the
    images; it stores both checksums and the precision and is used only when all three match (a
    corrupt or mismatched file is recomputed, with a warning).
    """
    net_sha = file_sha256(space.weights_path)
    images = real.cpu().contiguous()
    image_sha = hashlib.sha256(images.numpy().tobytes()).hexdigest()
    ident = {"version": STATS_VERSION, "net": net_sha, "images": image_sha, "shape": list(images.shape)}
    ident["precision"] = precision
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]
    folder = (Path(cache_dir) if cache_dir is not None else feature_cache_dir()) / "stats"
    path = folder / f"{key}.npz"
    if path.exists():
        try:
            with np.load(path) as stored:
                if json.loads(str(stored["ident"])) == ident:
                    return stored["mu"], stored["sigma"]
        except Exception:  # truncated or not an npz: recompute below
            pass
        warnings.warn(f"FID reference statistics {path} do not match their checksums; recomputing", stacklevel=2)
    with autocast(precision, device):
        mu, sigma = gaussian_statistics(classifier_features(space, images, device))
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(
        path, lambda tmp: _save_npz(tmp, mu=mu, sigma=sigma, ident=np.array(json.dumps(ident, sort_keys=True)))
    )
    return mu, sigma


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as handle:  # a handle: np.savez would append .npz to a path
        np.savez(handle, **arrays)


def compute_fid(
    model,
    real: torch.Tensor,
    space: FeatureSpace,
    *,
    samples: int,
    runs: int,
    device: torch.device,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    precision: str = "fp32",
    stats_cache: str | os.PathLike[str] | None = None,
) -> dict[str, float | list[float]]:
    """FID of ``runs`` sets of ``samples`` generated images against ``real`` (uint8 validation images).

    ``fid_classifier``: radae's own feature extraction (:func:`classifier_features`, equal to
    torch-fidelity's with the same extractor to ~1e-3) against :func:`reference_statistics` of
    ``real``, computed once and cached under ``stats_cache`` (default: the feature cache);
    ``fid_inception``: torch-fidelity per run.

    ``precision`` (:mod:`radae.precision`): the decoder's and the feature network's forwards; the
    images are quantised to uint8 and the feature statistics computed in float64 either way.

    Returns ``{"mean", "std", "runs"}`` (std over runs, ddof 0; 0 for one run).
    """
    reference = None
    if space.metric == "fid_classifier":  # radae's own features: the validation statistics once (cached)
        reference = reference_statistics(space, real, device, precision=precision, cache_dir=stats_cache)
    values = []
    for run in range(runs):
        with network_precision(model, precision, device):
            fake = generate(model, samples, device=device, seed=seed + run)
        with autocast(precision, device):
            if reference is not None:
                values.append(
                    frechet_distance(*gaussian_statistics(classifier_features(space, fake, device)), *reference)
                )
            else:
                values.append(_fid_torch_fidelity(space, fake, real, device))
        if progress is not None:
            progress(run + 1, runs)
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "runs": values}
