"""Typed run configuration: the single source of truth for every setting radae uses.

One dataclass per concern (data, model, prior, loss, adversarial training, training, evaluation,
baselines, the robustness probe along training), nested in :class:`RunConfig`. Every field carries its help text, which the CLI shows.
Invalid values raise :class:`ConfigError` at construction, naming the field
(``loss.alpha must be in [0, 1], got 1.5``). Fields that name a registered object (``model.name``,
``adv.method``, ``prior.placement`` ...) are checked against their registries by
:func:`radae.names.check_names` wherever a config is validated (this module imports no torch).

Fields left at ``None`` take the paper's setting for the chosen dataset (``PAPER_DEFAULTS``)
when the run config is built; the resolved values are what checkpoints, MLflow and Parquet store.

Sweeps and the CLI change a config only through dotted keys that must exist::

    cfg = apply_overrides(RunConfig(), {"loss.alpha": 0.9, "prior.num_modes": 25})
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """An invalid configuration value; the message names the offending field."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


# The paper's per-dataset settings (method.md, "Architectures and training"), used for fields
# left at None. MNIST-like data: MLP nets, D = 10, K = 10, alpha 0.95; SVHN: conv, D = 100,
# alpha 0.92; CelebA: conv, D = 64, K = 20, alpha 0.92.
PAPER_DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist": {"model.arch": "mlp", "model.latent_dim": 10, "prior.num_modes": 10, "loss.alpha": 0.95},
    "fashion-mnist": {"model.arch": "mlp", "model.latent_dim": 10, "prior.num_modes": 10, "loss.alpha": 0.95},
    "svhn": {"model.arch": "conv", "model.latent_dim": 100, "prior.num_modes": 10, "loss.alpha": 0.92},
    "celeba": {"model.arch": "conv", "model.latent_dim": 64, "prior.num_modes": 20, "loss.alpha": 0.92},
}


@dataclass(frozen=True)
class DataConfig:
    name: str = field(default="fashion-mnist", metadata=_help("dataset: mnist, fashion-mnist, svhn, celeba"))
    data_dir: str | None = field(
        default=None,
        metadata=_help("folder holding the raw dataset files (else $RADAE_DATA_DIR, system copies, download)"),
    )
    val_size: int = field(
        default=10000,
        metadata=_help("images held out of the training split for validation (datasets without an official one)"),
    )
    train_limit: int | None = field(default=None, metadata=_help("use only the first N training images (quick runs)"))
    download: bool = field(default=True, metadata=_help("allow a torchvision download when no local copy is found"))
    resize: str = field(
        default="bilinear",
        metadata=_help("28x28 mnist/fashion-mnist to 32x32: bilinear (the paper's resize) or pad (2 zero px per side)"),
    )

    def __post_init__(self) -> None:
        _check(self.val_size >= 1, "data.val_size", "must be >= 1", self.val_size)
        _check(self.train_limit is None or self.train_limit >= 1, "data.train_limit", "must be >= 1", self.train_limit)


@dataclass(frozen=True)
class ModelConfig:
    name: str = field(default="rae", metadata=_help("model: rae (robust GMM-prior autoencoder) or a baseline"))
    arch: str | None = field(default=None, metadata=_help("encoder/decoder networks: mlp or conv (default: dataset's)"))
    latent_dim: int | None = field(default=None, metadata=_help("latent dimension D (default: dataset's)"))

    def __post_init__(self) -> None:
        _check(self.latent_dim is None or self.latent_dim >= 1, "model.latent_dim", "must be >= 1", self.latent_dim)


@dataclass(frozen=True)
class PriorConfig:
    num_modes: int | None = field(default=None, metadata=_help("number of GMM modes K; 1 is the unimodal prior"))
    sigma: float = field(default=1.0, metadata=_help("shared isotropic std of every mode"))
    placement: str = field(
        default="auto",
        metadata=_help(
            "mode means: onehot (K <= D), spread (any K), sobol-doubling (authors' Sobol, any K), "
            "roll (authors' s e_(k mod D), repeats modes when K > D), auto (onehot when K <= D, else spread)"
        ),
    )
    scale: float = field(default=10.0, metadata=_help("onehot, roll: distance s of each mean from the origin"))
    min_distance: float = field(
        default=6.0,
        metadata=_help("spread: smallest distance between means; sobol-doubling: its lower bound (in sigmas)"),
    )
    seed: int = field(default=0, metadata=_help("spread: seed of the Sobol directions"))

    def __post_init__(self) -> None:
        _check(self.num_modes is None or self.num_modes >= 1, "prior.num_modes", "must be >= 1", self.num_modes)
        _check(self.sigma > 0, "prior.sigma", "must be > 0", self.sigma)
        _check(self.scale > 0, "prior.scale", "must be > 0", self.scale)
        _check(self.min_distance > 0, "prior.min_distance", "must be > 0", self.min_distance)


@dataclass(frozen=True)
class LossConfig:
    alpha: float | None = field(default=None, metadata=_help("coupling strength alpha of eq. 7-8, in [0, 1]"))
    rec_weight: float = field(default=500.0, metadata=_help("lambda_REC of eq. 9 (authors' MNIST value 500)"))
    ks_weight: float | None = field(default=None, metadata=_help("lambda_KS of eq. 9 (default: eq. 10 heuristic)"))
    cov_weight: float | None = field(default=None, metadata=_help("lambda_CV of eq. 9 (default: eq. 10 heuristic)"))
    ks_mult: float = field(default=1.0, metadata=_help("multiplier on lambda_KS (what sweeps search)"))
    cov_mult: float = field(default=1.0, metadata=_help("multiplier on lambda_CV (what sweeps search)"))
    rec_mult: float = field(default=1.0, metadata=_help("multiplier on lambda_REC (what sweeps search)"))
    weight_batches: int = field(default=100, metadata=_help("eq. 10: prior batches M averaged for the weights"))
    coupled_weights: bool = field(
        default=False, metadata=_help("eq. 10: draw the two prior batches coupled at alpha instead of independently")
    )
    latent_noise: float = field(
        default=0.1, metadata=_help("std of the latent noise xi added before decoding in training")
    )
    adv_rec: bool = field(default=False, metadata=_help("also reconstruct x_adv towards x in L_REC"))
    ks_weighting: str = field(
        default="eq6",
        metadata=_help(
            "eq. 10 weighting of L_KS_adv's two terms: eq6 (2/3 L_KS + 1/3 L_2pt, one weight) or "
            "separate (authors' code: each term its own eq. 10 weight, added with factor 1)"
        ),
    )

    def __post_init__(self) -> None:
        _check(self.alpha is None or 0.0 <= self.alpha <= 1.0, "loss.alpha", "must be in [0, 1]", self.alpha)
        for name in ("rec_weight", "ks_weight", "cov_weight", "ks_mult", "cov_mult", "rec_mult", "latent_noise"):
            value = getattr(self, name)
            _check(value is None or value >= 0, f"loss.{name}", "must be >= 0", value)
        _check(self.weight_batches >= 1, "loss.weight_batches", "must be >= 1", self.weight_batches)


@dataclass(frozen=True)
class AdvConfig:
    method: str = field(default="fgsm", metadata=_help("adversarial training: fgsm (random start), pgd or none"))
    eps: float = field(default=0.3, metadata=_help("L-inf radius of the training perturbation (pixels in [0, 1])"))
    step_size: float = field(default=0.375, metadata=_help("FGSM step a (authors' MNIST value 0.375)"))
    pgd_steps: int = field(default=5, metadata=_help("PGD: number of projected steps"))
    pgd_step_size: float | None = field(default=None, metadata=_help("PGD: step size (default 2.5 * eps / steps)"))

    def __post_init__(self) -> None:
        _check(self.eps >= 0, "adv.eps", "must be >= 0", self.eps)
        _check(self.step_size >= 0, "adv.step_size", "must be >= 0", self.step_size)
        _check(self.pgd_steps >= 1, "adv.pgd_steps", "must be >= 1", self.pgd_steps)
        _check(
            self.pgd_step_size is None or self.pgd_step_size > 0, "adv.pgd_step_size", "must be > 0", self.pgd_step_size
        )


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = field(default=5, metadata=_help("training epochs (the paper: 100-500)"))
    batch_size: int = field(default=100, metadata=_help("batch size N"))
    lr: float = field(default=0.002, metadata=_help("Adam learning rate"))
    lr_decay: float = field(default=0.5, metadata=_help("factor applied to the lr when the validation loss stalls"))
    lr_patience: int = field(default=2, metadata=_help("epochs without validation improvement before the lr decays"))
    min_lr: float = field(default=1e-5, metadata=_help("the lr never decays below this"))
    max_steps_per_epoch: int | None = field(
        default=None, metadata=_help("cap on training steps per epoch (quick runs)")
    )
    seed: int = field(default=0, metadata=_help("seed of every random stream (data order, noise, attacks)"))
    device: str = field(default="auto", metadata=_help("cpu, cuda, cuda:N or auto (cuda when available)"))
    step_mode: str = field(default="auto", metadata=_help("training step: eager, graph (CUDA graph) or auto"))
    precision: str = field(
        default="fp32",
        metadata=_help(
            "network forward passes in training and validation: fp32, or bf16 (autocast; losses stay fp32; "
            "needs avx512_bf16/amx_bf16 or a bf16 GPU)"
        ),
    )
    out_dir: str | None = field(default=None, metadata=_help("output folder (default runs/<dataset>-<model>)"))

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "train.epochs", "must be >= 1", self.epochs)
        _check(self.batch_size >= 2, "train.batch_size", "must be >= 2", self.batch_size)
        _check(self.lr > 0, "train.lr", "must be > 0", self.lr)
        _check(0 < self.lr_decay <= 1, "train.lr_decay", "must be in (0, 1]", self.lr_decay)
        _check(self.lr_patience >= 0, "train.lr_patience", "must be >= 0", self.lr_patience)
        _check(self.min_lr >= 0, "train.min_lr", "must be >= 0", self.min_lr)
        _check(
            self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1,
            "train.max_steps_per_epoch",
            "must be >= 1",
            self.max_steps_per_epoch,
        )


@dataclass(frozen=True)
class EvalConfig:
    images: int = field(default=100, metadata=_help("test images attacked"))
    trials: int = field(default=10, metadata=_help("random starts per image and attack"))
    levels: tuple[float, ...] = field(default=(1.0, 3.0, 5.0), metadata=_help("L2 attack budgets lambda (pixel units)"))
    fid_samples: int = field(default=10000, metadata=_help("generated images per FID run"))
    fid_runs: int = field(default=5, metadata=_help("FID repetitions (mean and std)"))
    seed: int = field(default=0, metadata=_help("seed of image choice, targets and random starts"))
    attack_steps: int = field(default=100, metadata=_help("projected-gradient steps of each attack"))
    attack_step_frac: float | None = field(
        default=None,
        metadata=_help(
            "first attack step as a fraction of lambda, cosine-decayed (default: 1.0 latent, 2.0 max damage)"
        ),
    )
    attack_batch_size: int | None = field(
        default=None, metadata=_help("rows (lambda x trial x image) optimised at once; None = all in one batch")
    )
    strength_probe_images: int = field(
        default=2,
        metadata=_help(
            "images per attack and lambda also attacked by per-image L-BFGS-B from the same start: "
            "<attack>_strength_lbfgsb_l* = batched / L-BFGS-B objective (> 1: batched stronger); 0 = off"
        ),
    )
    attack_restarts: int | None = field(
        default=None,
        metadata=_help(
            "starts per row of the batched attack, screened then the best refined (default 4 for both attacks)"
        ),
    )
    fid: bool = field(default=True, metadata=_help("compute FID (fid_classifier, or fid_inception with weights)"))
    inception_weights: str | None = field(
        default=None, metadata=_help("local torch-fidelity Inception-v3 weights file: report fid_inception")
    )
    feature_epochs: int = field(default=2, metadata=_help("epochs of the cached FID classifier feature network"))
    feature_cache: str | None = field(
        default=None, metadata=_help("folder of cached feature networks (default ~/.cache/radae/features)")
    )
    classifier_epochs: int = field(default=25, metadata=_help("downstream latent MLP: training epochs"))
    classifier_lr: float = field(default=0.01, metadata=_help("downstream latent MLP: Adam learning rate"))
    classifier_batch_size: int = field(default=100, metadata=_help("downstream latent MLP: batch size"))
    classifier_hidden: int = field(default=256, metadata=_help("downstream latent MLP: hidden units"))
    grid_images: int = field(default=8, metadata=_help("source images shown in each attack grid figure"))
    precision: str = field(
        default="fp32",
        metadata=_help(
            "network forwards of the attacks' optimisation and of FID (sampling, features): fp32 or bf16; "
            "reconstructions, MS-SSIM, L2, accuracies and FID statistics stay fp32"
        ),
    )
    attack_impl: str = field(
        default="batched",
        metadata=_help(
            "attack optimiser: batched (projected gradient, all rows at once) or lbfgsb-authors "
            "(per-image SciPy L-BFGS-B as the authors' released code: radius by rescaling, m 25/100, factr 10)"
        ),
    )
    lbfgsb_maxfun: int = field(
        default=15000, metadata=_help("lbfgsb-authors: most objective evaluations per image (SciPy's default 15000)")
    )
    decode_noise_latent: float = field(
        default=0.0,
        metadata=_help(
            "latent attack: std of noise added to the code before every decode (authors' released code 0.4)"
        ),
    )
    decode_noise_max_damage: float = field(
        default=0.0,
        metadata=_help("max-damage attack: std of noise added to the code before every decode (authors' code 0.004)"),
    )

    def __post_init__(self) -> None:
        _check(self.lbfgsb_maxfun >= 1, "eval.lbfgsb_maxfun", "must be >= 1", self.lbfgsb_maxfun)
        for name in ("decode_noise_latent", "decode_noise_max_damage"):
            _check(getattr(self, name) >= 0, f"eval.{name}", "must be >= 0", getattr(self, name))
        _check(self.images >= 1, "eval.images", "must be >= 1", self.images)
        _check(self.attack_steps >= 1, "eval.attack_steps", "must be >= 1", self.attack_steps)
        _check(
            self.attack_step_frac is None or self.attack_step_frac > 0,
            "eval.attack_step_frac",
            "must be > 0",
            self.attack_step_frac,
        )
        _check(
            self.strength_probe_images >= 0,
            "eval.strength_probe_images",
            "must be >= 0 (0 = off)",
            self.strength_probe_images,
        )
        _check(
            self.attack_restarts is None or self.attack_restarts >= 1,
            "eval.attack_restarts",
            "must be >= 1",
            self.attack_restarts,
        )
        _check(
            self.attack_batch_size is None or self.attack_batch_size >= 1,
            "eval.attack_batch_size",
            "must be >= 1",
            self.attack_batch_size,
        )
        _check(self.feature_epochs >= 1, "eval.feature_epochs", "must be >= 1", self.feature_epochs)
        _check(
            self.classifier_epochs >= 0, "eval.classifier_epochs", "must be >= 0 (0 skips it)", self.classifier_epochs
        )
        _check(self.classifier_lr > 0, "eval.classifier_lr", "must be > 0", self.classifier_lr)
        _check(
            self.classifier_batch_size >= 1, "eval.classifier_batch_size", "must be >= 1", self.classifier_batch_size
        )
        _check(self.classifier_hidden >= 1, "eval.classifier_hidden", "must be >= 1", self.classifier_hidden)
        _check(self.grid_images >= 1, "eval.grid_images", "must be >= 1", self.grid_images)
        _check(self.trials >= 1, "eval.trials", "must be >= 1", self.trials)
        _check(len(self.levels) >= 1, "eval.levels", "must name at least one lambda", self.levels)
        for level in self.levels:
            _check(level > 0, "eval.levels", "every lambda must be > 0", self.levels)
        _check(self.fid_samples >= 2, "eval.fid_samples", "must be >= 2", self.fid_samples)
        _check(self.fid_runs >= 1, "eval.fid_runs", "must be >= 1", self.fid_runs)


@dataclass(frozen=True)
class BaselineConfig:
    """Settings of the baseline models (docs/baselines.md); the robust autoencoder ignores them."""

    likelihood: str = field(
        default="bernoulli",
        metadata=_help("baselines' decoder likelihood: bernoulli (BCE summed over pixels) or gaussian"),
    )
    likelihood_std: float = field(
        default=0.1, metadata=_help("gaussian likelihood: fixed pixel std (NLL = SSE / 2 std^2 + const)")
    )
    beta: float = field(default=4.0, metadata=_help("beta-vae: weight of the KL term"))
    tc_alpha: float = field(default=1.0, metadata=_help("beta-tcvae: weight of the index-code mutual information"))
    tc_beta: float = field(default=6.0, metadata=_help("beta-tcvae: weight of the total correlation"))
    tc_gamma: float = field(default=1.0, metadata=_help("beta-tcvae: weight of the dimension-wise KL"))
    dataset_size: int | None = field(
        default=None, metadata=_help("beta-tcvae: N of the stratified-sampling weights (default: training split size)")
    )
    lip_encoder: float = field(
        default=5.0, metadata=_help("lipschitz-vae: Lipschitz constant of the encoder (mean and std)")
    )
    lip_decoder: float = field(default=40.0, metadata=_help("lipschitz-vae: Lipschitz constant of the decoder logits"))
    bjorck_iters: int = field(
        default=10, metadata=_help("lipschitz-vae: Bjorck orthonormalisation iterations per forward")
    )
    min_std: float = field(default=0.01, metadata=_help("lipschitz-vae: lower bound of the encoder std"))
    se_weight: float = field(
        default=1.0, metadata=_help("se: weight of the Sinkhorn term between clean and perturbed codes")
    )
    se_perturbation: str = field(
        default="adversarial",
        metadata=_help("se: perturbed input, adversarial (radae.perturb with adv.*) or random (U[-eps, eps])"),
    )
    se_samples: int = field(default=8, metadata=_help("se: posterior samples per input in the Sinkhorn term"))
    sinkhorn_eps: float = field(default=0.1, metadata=_help("se: entropic regularisation of the Sinkhorn distance"))
    sinkhorn_iters: int = field(default=20, metadata=_help("se: Sinkhorn iterations"))
    rho: float = field(default=0.975, metadata=_help("avae: coupling rho of the self-consistency term, in [0, 1)"))
    avae_weight: float = field(default=1.0, metadata=_help("avae: weight of the self-consistency term"))

    def __post_init__(self) -> None:
        for name in ("likelihood_std", "lip_encoder", "lip_decoder", "min_std", "sinkhorn_eps"):
            _check(getattr(self, name) > 0, f"baseline.{name}", "must be > 0", getattr(self, name))
        for name in ("beta", "tc_alpha", "tc_beta", "tc_gamma", "se_weight", "avae_weight"):
            _check(getattr(self, name) >= 0, f"baseline.{name}", "must be >= 0", getattr(self, name))
        _check(
            self.dataset_size is None or self.dataset_size >= 2,
            "baseline.dataset_size",
            "must be >= 2",
            self.dataset_size,
        )
        for name in ("bjorck_iters", "se_samples", "sinkhorn_iters"):
            _check(getattr(self, name) >= 1, f"baseline.{name}", "must be >= 1", getattr(self, name))
        _check(
            self.se_perturbation in ("adversarial", "random"),
            "baseline.se_perturbation",
            "must be adversarial or random",
            self.se_perturbation,
        )
        _check(0.0 <= self.rho < 1.0, "baseline.rho", "must be in [0, 1)", self.rho)


@dataclass(frozen=True)
class ProbeConfig:
    """The robustness probe along training (radae/probe.py): a few fixed images attacked every few epochs."""

    every: int = field(default=1, metadata=_help("probe robustness every this many epochs (0 = off)"))
    images: int = field(default=20, metadata=_help("fixed test images the probe attacks"))
    trials: int = field(default=1, metadata=_help("random starts per image (fixed: the same every probe)"))
    levels: tuple[float, ...] = field(default=(3.0, 5.0), metadata=_help("L2 budgets lambda of the probe"))
    attack_steps: int = field(default=50, metadata=_help("projected-gradient steps of each probe attack"))
    seed: int = field(default=0, metadata=_help("seed of the probe's images, targets and random starts"))

    def __post_init__(self) -> None:
        _check(self.every >= 0, "probe.every", "must be >= 0 (0 = off)", self.every)
        for name in ("images", "trials", "attack_steps"):
            _check(getattr(self, name) >= 1, f"probe.{name}", "must be >= 1", getattr(self, name))
        _check(len(self.levels) >= 1, "probe.levels", "needs at least one lambda", self.levels)
        for level in self.levels:
            _check(level > 0, "probe.levels", "every lambda must be > 0", self.levels)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    adv: AdvConfig = field(default_factory=AdvConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)

    def __post_init__(self) -> None:
        _check(
            self.data.name in PAPER_DEFAULTS, "data.name", f"must be one of {', '.join(PAPER_DEFAULTS)}", self.data.name
        )
        # Fill the fields left at None with the dataset's paper settings, so a constructed
        # RunConfig is always fully resolved.
        for key, value in PAPER_DEFAULTS[self.data.name].items():
            section, name = key.split(".")
            if getattr(getattr(self, section), name) is None:
                object.__setattr__(self, section, dataclasses.replace(getattr(self, section), **{name: value}))
        if self.train.out_dir is None:
            out = f"runs/{self.data.name}-{self.model.name}"
            object.__setattr__(self, "train", dataclasses.replace(self.train, out_dir=out))
        k, d = self.prior.num_modes, self.model.latent_dim
        if self.prior.placement == "onehot":
            _check(
                k <= d,
                "prior.num_modes",
                f"onehot placement needs K <= latent_dim ({d}); use prior.placement=spread",
                k,
            )

    @property
    def placement(self) -> str:
        """The mode placement actually used: ``auto`` becomes onehot when K <= D, else spread."""
        # lazy: radae.prior loads torch; reports read configs without it (radae.analysis.tables)
        from radae.prior import resolve_placement

        return resolve_placement(self.prior.placement, self.prior.num_modes, self.model.latent_dim)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (JSON-serialisable) of every field."""
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """Flat ``{"section.field": value}`` dict: MLflow params and Parquet columns."""
        return {f"{s}.{k}": v for s, sec in self.to_dict().items() for k, v in sec.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> RunConfig:
        """Inverse of :meth:`to_dict`; unknown sections or fields raise :class:`ConfigError`."""
        flat = {f"{s}.{k}": v for s, sec in data.items() for k, v in _as_mapping(sec, s).items()}
        return apply_overrides(cls(), flat)


def _as_mapping(value: Any, section: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"config section {section!r} must be a mapping, got {type(value).__name__}")
    return value


def _check(ok: bool, key: str, requirement: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} {requirement}, got {value!r}")


def section_types() -> dict[str, type]:
    """Section name -> dataclass type."""
    hints = typing.get_type_hints(RunConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(RunConfig)}


def field_types(section_cls: type) -> dict[str, Any]:
    """Field name -> resolved type hint of one section dataclass."""
    hints = typing.get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(section_cls)}


def known_keys() -> list[str]:
    """Every dotted key a config accepts."""
    return [f"{s}.{name}" for s, cls in section_types().items() for name in field_types(cls)]


def coerce(key: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` (a CLI string, or a number from a sweep) to the type ``hint`` of ``key``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(key, value, inner[0])
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(coerce(key, v, args[0]) for v in items)
    try:
        if hint is bool:
            if isinstance(value, str):
                lowered = value.lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return lowered in ("true", "1", "yes")
            return bool(value)
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if hint is float:
            number = float(value)
            if not math.isfinite(number):  # no field means anything at inf or nan (lr=inf would train to NaN)
                raise ValueError(value)
            return number
        if hint is str:
            return str(value)
    except (TypeError, ValueError):
        expected = "a finite float" if hint is float else getattr(hint, "__name__", hint)
        raise ConfigError(f"{key} expects {expected}, got {value!r}") from None
    return value


def apply_overrides(base: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """A new config with ``{"section.field": value}`` overrides applied and validated.

    Keys must exist (``loss.alfa`` raises, listing the section's fields). Fields the base took
    from its dataset's defaults (``model.latent_dim`` ...) are derived again from the new
    dataset, so ``{"data.name": "svhn"}`` gives SVHN's D = 100 and conv nets.
    """
    sections_by_name = section_types()
    sections: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section not in sections_by_name or not name:
            raise ConfigError(f"unknown config key {key!r}; sections: {', '.join(sections_by_name)}")
        hints = field_types(sections_by_name[section])
        if name not in hints:
            raise ConfigError(f"unknown config key {key!r}; fields of {section}: {', '.join(hints)}")
        sections.setdefault(section, {})[name] = coerce(key, value, hints[name])
    # Fields derived from the dataset or model name start over, so changing data.name or
    # model.name re-derives them unless they are overridden too.
    base = _unresolve(base)
    replaced = {s: dataclasses.replace(getattr(base, s), **kw) for s, kw in sections.items()}
    return dataclasses.replace(base, **replaced)


def _unresolve(cfg: RunConfig) -> RunConfig:
    """``cfg`` with every dataset-resolved field that still equals its dataset default reset to None."""
    changes: dict[str, dict[str, Any]] = {}
    for key, value in PAPER_DEFAULTS[cfg.data.name].items():
        section, name = key.split(".")
        if getattr(getattr(cfg, section), name) == value:
            changes.setdefault(section, {})[name] = None
    if cfg.train.out_dir == f"runs/{cfg.data.name}-{cfg.model.name}":
        changes.setdefault("train", {})["out_dir"] = None
    sections = {s: dataclasses.replace(getattr(cfg, s), **kw) for s, kw in changes.items()}
    # Bypass RunConfig.__post_init__, which would resolve the Nones again straight away.
    new = object.__new__(RunConfig)
    for f in dataclasses.fields(RunConfig):
        object.__setattr__(new, f.name, sections.get(f.name, getattr(cfg, f.name)))
    return new
