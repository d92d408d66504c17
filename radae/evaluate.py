"""Robustness and fidelity of a trained model, measured as the paper does (method.md, "Evaluation").

    python -m radae.evaluate runs/mnist-rae/checkpoint.pt                      # full protocol
    python -m radae.evaluate CKPT --images 100 --trials 10 --levels 1 3 5 --out DIR
    python -m radae.evaluate CKPT --inception-weights pt_inception.pth        # fid_inception too
    python -m radae.evaluate CKPT --images 10 --trials 2 --no-fid            # quick look

Protocol: ``images`` random test images, each with a target test image of another class;
both attacks (:mod:`radae.attacks`) at every lambda with ``trials`` random starts, all rows in one
batch; MS-SSIM and L2 of every named pair; the downstream latent MLP's accuracy, clean and under
attack; FID of ``fid_samples`` prior samples against the validation images, ``fid_runs`` times.

Outputs in ``--out`` (default: ``eval/`` beside the checkpoint): ``eval.parquet`` (long format:
name, metric, compared, attack, lambda, mean, std, n), ``images.parquet`` (per attacked image: image,
name, value; each image's mean over its random starts, plus its R, :func:`radae.objective.with_robustness`;
what the intervals of :mod:`radae.analysis.intervals` resample), ``eval.json`` (the same plus the flat
metrics and settings; written last, so its presence means the run finished), attack grids
``grid_<attack>_l<lambda>.png`` and ``attack_loss.png``. Every file is written atomically.

Metric names: ``<attack>_<metric>_<compared>_l<lambda>_<mean|std>`` with ``metric`` one of
``msssim`` (standard MS-SSIM), ``msssim_paper`` (the paper's formula, :func:`radae.metrics.ms_ssim_paper`)
and ``l2``, and compared pairs ``xt_recxa``
(target vs recon of x_a), ``recx_recxa``, ``x_xa``, ``xa_recxa``; ``clean_<metric>_x_recx_*``;
``<attack>_loss_objective_l*``; ``<attack>_acc_source_l*`` and ``classifier_acc_clean``;
``<attack>_strength_lbfgsb_l*`` (batched attack only: its objective over per-image L-BFGS-B's on
``eval.strength_probe_images`` images from the same starts, > 1 = batched stronger);
``fid_classifier_*`` or ``fid_inception_*`` (never both under one name).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from radae import classifier as clf
from radae import eval_plots, fid
from radae.attack_inputs import frozen, pick_images
from radae.attacks import ATTACK_IMPLS, Attack, NoisyDecoding, random_start, strength_vs_lbfgsb
from radae.checkpoint import CheckpointError, load_model
from radae.cli import Parser, add_section_arguments
from radae.config import ConfigError, EvalConfig, RunConfig, apply_overrides
from radae.data import DataError, load_dataset
from radae.eval_plots import level_suffix
from radae.metrics import batched, l2_distance, ms_ssim, ms_ssim_paper
from radae.names import check_section
from radae.objective import with_robustness
from radae.precision import check_precision, network_precision
from radae.trainer import resolve_device

# Which image pairs each attack reports (method.md's list); "xt" exists only for the latent attack.
PAIRS = {
    "latent": ("xt_recxa", "recx_recxa", "x_xa", "xa_recxa"),
    "max_damage": ("recx_recxa", "x_xa", "xa_recxa"),
}
# Per-image metrics reported for every pair, by metric name: both MS-SSIMs side by side (the paper's
# formula is not the standard one; method.md) and L2.
IMAGE_METRICS = {"msssim": ms_ssim, "msssim_paper": ms_ssim_paper, "l2": l2_distance}


@dataclass
class EvalResult:
    """``metrics``: flat name -> float; ``rows``: long-format records; ``files``: outputs written;
    ``images``: per attacked image, ``{name: {test index: value}}`` for every per-image metric (``name``
    as in ``metrics`` without ``_mean``; attack metrics averaged over the image's random starts), plus
    ``robustness`` and ``robustness_paper`` per image (:func:`radae.objective.with_robustness`)."""

    metrics: dict[str, float]
    rows: list[dict[str, Any]]
    files: list[str] = field(default_factory=list)
    images: dict[str, dict[int, float]] = field(default_factory=dict)


def check_request(data, cfg: EvalConfig) -> fid.FeatureSpace | None:
    """Raise before any work for requests that cannot be met; returns the Inception space if asked."""
    check_section("eval", cfg)  # eval.attack_impl
    for level in cfg.levels:
        if level <= 0:
            raise ConfigError(f"eval.levels every lambda must be > 0, got {cfg.levels!r}")
    if cfg.images > len(data.test):
        raise ConfigError(f"eval.images asks for {cfg.images} test images but the test split has {len(data.test)}")
    if cfg.fid and cfg.inception_weights:
        return fid.check_inception_weights(cfg.inception_weights)
    return None


def classifier_space(data, cfg: EvalConfig, log: Callable[[str], None] = print) -> fid.FeatureSpace:
    """The dataset's ``fid_classifier`` feature space (:func:`radae.fid.classifier_feature_space` on the training split)."""
    train = data.train
    return fid.classifier_feature_space(
        data.info.name,
        train.images,
        train.labels,
        data.info.num_classes,
        cache_dir=cfg.feature_cache,
        epochs=cfg.feature_epochs,
        seed=cfg.seed,
        log=log,
    )


def per_image_means(values: torch.Tensor, images: torch.Tensor) -> dict[int, float]:
    """``{image: mean of its values}`` (values and image ids of the same length; e.g. over random starts)."""
    images = images.cpu().long()
    ids, inverse = torch.unique(images, return_inverse=True)
    sums = torch.zeros(len(ids), dtype=torch.float64).index_add_(0, inverse, values.double().cpu())
    counts = torch.zeros(len(ids), dtype=torch.float64).index_add_(
        0, inverse, torch.ones(len(values), dtype=torch.float64)
    )
    return {int(i): float(v) for i, v in zip(ids.tolist(), (sums / counts).tolist(), strict=True)}


def _reconstruct(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model.reconstruct(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


class Progress:
    """Throttled progress lines on stderr (about every 10%)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.last = enabled, {}

    def __call__(self, task: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            tenth = done * 10 // max(total, 1)
            if self.enabled and (done == total or tenth > self.last.get(task, -1)):
                self.last[task] = tenth
                print(f"[eval] {task}: {done}/{total}", file=sys.stderr, flush=True)

        return report


def _add(
    rows, metrics, values: torch.Tensor, *, metric, compared, attack, level=None, name=None, images=None, per_image=None
) -> None:
    """Record mean and std (over images x trials, ddof 0) as ``<name>_mean``/``_std`` and as a row; with
    ``images`` (the test index of each value) also each image's mean over its values into ``per_image``."""
    values = values.double().cpu()
    mean, std = float(values.mean()), float(values.std(unbiased=False))
    if name is None:
        name = f"{attack}_{metric}_{compared}" + ("" if level is None else f"_{level_suffix(level)}")
    metrics[f"{name}_mean"], metrics[f"{name}_std"] = mean, std
    if images is not None and per_image is not None:
        per_image[name] = per_image_means(values, images)
    row = {"name": name, "metric": metric, "compared": compared, "attack": attack, "lambda": level}
    rows.append(row | {"mean": mean, "std": std, "n": len(values)})


def evaluate(
    model,
    data,
    cfg: EvalConfig,
    *,
    device: str | torch.device = "cpu",
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    feature_net: fid.FeatureSpace | str | os.PathLike[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> EvalResult:
    """Run the evaluation protocol on ``model`` (an Autoencoder) and ``data`` (Splits); see the module doc.

    ``feature_net``: a precomputed FID feature space (:class:`radae.fid.FeatureSpace`, or the path of
    a cached classifier feature network; a sweep can build it once); by default the dataset's cached
    classifier feature network, or Inception with ``cfg.inception_weights``.
    ``out_dir``: where files go (None: nothing written). Bad requests raise before any work.
    """
    device = torch.device(device)
    log = log or (lambda s: print(f"[eval] {s}", file=sys.stderr, flush=True) if progress else None)
    inception = check_request(data, cfg)
    check_precision(cfg.precision, device, "eval.precision")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    plots = out is not None and importlib.util.find_spec("matplotlib") is not None
    if out is not None and not plots:
        log("matplotlib is not installed: no figures, only eval.json and eval.parquet")
    show = Progress(progress)
    start, cpu_start = time.perf_counter(), time.process_time()
    rows: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    files: list[str] = []
    per_image: dict[str, dict[int, float]] = {}
    idx, tidx = pick_images(data.test.labels, cfg.images, cfg.seed, by_class=data.info.class_targets)
    x, xt = data.test.get(idx).to(device), data.test.get(tidx).to(device)
    src_labels = data.test.labels[idx].cpu()
    with frozen(model):
        recx = _reconstruct(model, x)
        for metric, fn in IMAGE_METRICS.items():
            _add(
                rows,
                metrics,
                batched(fn, x, recx),
                metric=metric,
                compared="x_recx",
                attack="clean",
                images=idx,
                per_image=per_image,
            )
        with _timed(metrics, "classifier"):
            latent_clf = _latent_classifier(model, data, cfg, device, rows, metrics, log)
        curves = {}
        grid_dir = out if plots else None
        for name in ("latent", "max_damage"):
            with _timed(metrics, f"attack_{name}"):
                curves[name] = _attack(
                    name,
                    model,
                    x,
                    xt,
                    src_labels,
                    latent_clf,
                    cfg,
                    device,
                    rows,
                    metrics,
                    files,
                    grid_dir,
                    show,
                    (idx, per_image),
                )
        if cfg.fid:
            with _timed(metrics, "fid_features"):
                space = inception or feature_net
                if isinstance(space, (str, os.PathLike)):
                    space = fid.FeatureSpace("fid_classifier", fid.EXTRACTOR_NAME, "features", str(space))
                if space is None:
                    space = classifier_space(data, cfg, log)
            log(
                f"{space.metric}: {cfg.fid_runs} runs of {cfg.fid_samples} samples vs {len(data.val)} validation images"
            )
            with _timed(metrics, "fid"):
                runs = fid.compute_fid(
                    model,
                    data.val.images,
                    space,
                    samples=cfg.fid_samples,
                    runs=cfg.fid_runs,
                    device=device,
                    seed=cfg.seed,
                    progress=show(f"{space.metric} runs"),
                    precision=cfg.precision,
                    stats_cache=cfg.feature_cache,
                )["runs"]
            _add(
                rows,
                metrics,
                torch.tensor(runs),
                metric=space.metric,
                compared="generated_val",
                attack="none",
                name=space.metric,
            )
    wall = time.perf_counter() - start
    metrics["eval_wall_s"] = wall
    metrics["eval_cpu_s"] = time.process_time() - cpu_start
    if plots:
        files.append(str(eval_plots.loss_vs_lambda(out / "attack_loss.png", curves)))
    per_image = with_robustness(per_image, cfg.levels)
    if out is not None:
        files += eval_plots.write_tables(out, metrics, rows, dataclasses.asdict(cfg), wall, per_image)
    log(f"done in {wall:.1f} s")
    return EvalResult(metrics, rows, files, per_image)


@contextmanager
def _timed(metrics: dict[str, float], stage: str):
    """Record the wall time of a stage as ``time_<stage>_s`` and this process's CPU time as ``time_<stage>_cpu_s``
    (the CPU time is what a shared machine's load does not inflate)."""
    begin, cpu_begin = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        metrics[f"time_{stage}_s"] = time.perf_counter() - begin
        metrics[f"time_{stage}_cpu_s"] = time.process_time() - cpu_begin


def _latent_classifier(model, data, cfg: EvalConfig, device, rows, metrics, log):
    """The downstream 2-layer MLP on training codes, and its clean test accuracy (None if disabled)."""
    if cfg.classifier_epochs == 0:
        return None
    log(f"training the latent MLP classifier ({cfg.classifier_epochs} epochs)")
    net = clf.train_latent_classifier(
        clf.encode_all(model, data.train.images, device=device),
        data.train.labels.to(device),
        data.info.num_classes,
        epochs=cfg.classifier_epochs,
        lr=cfg.classifier_lr,
        batch_size=cfg.classifier_batch_size,
        hidden=cfg.classifier_hidden,
        seed=cfg.seed,
    )
    pred = clf.predict(net, clf.encode_all(model, data.test.images, device=device)).cpu()
    correct = (pred == data.test.labels.cpu()).double()
    _add(rows, metrics, correct, metric="acc", compared="label", attack="clean", name="classifier_acc_clean")
    metrics["classifier_acc_clean"] = metrics.pop("classifier_acc_clean_mean")
    metrics.pop("classifier_acc_clean_std")
    return net


def _attack(
    name, model, x, xt, src_labels, latent_clf, cfg: EvalConfig, device, rows, metrics, files, out, show, images
):
    """One attack at every lambda: records loss, MS-SSIM/L2 of its pairs, accuracy; returns its loss curve.

    ``images``: (test index of each attacked image, the per-image dict every metric's image means go to).

    ``cfg.attack_impl`` picks the optimiser (batched or the authors' per-image L-BFGS-B; eval.json's
    settings and a sweep's config columns record which); ``cfg.decode_noise_<attack>`` > 0 leaves
    latent noise on in every decode of this attack, as the authors' released scripts do.
    """
    attack = ATTACK_IMPLS.create(
        cfg.attack_impl,
        name=name,
        steps=cfg.attack_steps,
        step_frac=cfg.attack_step_frac,
        batch_size=cfg.attack_batch_size,
        restarts=cfg.attack_restarts,
        maxfun=cfg.lbfgsb_maxfun,
    )
    decode_noise = {"latent": cfg.decode_noise_latent, "max_damage": cfg.decode_noise_max_damage}[name]
    if decode_noise > 0:
        model = NoisyDecoding(model, decode_noise, torch.Generator().manual_seed(cfg.seed + 2))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    # eval.precision covers the attack's optimisation only; everything measured below runs in fp32.
    with network_precision(model, cfg.precision, device):
        res = attack.run(
            model, x, cfg.levels, cfg.trials, targets=xt, generator=gen, progress=show(f"{name} attack steps")
        )
    if cfg.strength_probe_images > 0 and isinstance(attack, Attack):
        # The batched attack's first-restart starts, redrawn from the same seed (Attack.run draws them first).
        first = random_start(x[res.image_index], res.level.to(device), torch.Generator().manual_seed(cfg.seed + 1))
        with torch.no_grad():
            const = attack.prepare(model, x, xt)
        strength = strength_vs_lbfgsb(attack, model, x, const, res, first, cfg.strength_probe_images)
        for level, value in strength.items():
            _add(rows, metrics, torch.tensor([value]), metric="strength", compared="lbfgsb", attack=name, level=level)
    ii = res.image_index.to(device)
    test_index, per_image = images
    row_image = test_index.cpu()[res.image_index.cpu()]  # each row's test-set index
    recxa = _reconstruct(model, res.x_adv)
    images = {"x": x[ii], "xa": res.x_adv, "recx": _reconstruct(model, x)[ii], "recxa": recxa, "xt": xt[ii]}
    correct = None
    if latent_clf is not None:
        with torch.no_grad():
            pred = clf.predict(latent_clf, clf.encode_all(model, res.x_adv)).cpu()
        correct = (pred == src_labels[res.image_index]).double()  # the source label, for both attacks
    with _timed(metrics, f"metrics_{name}"):
        _measure(name, res, images, correct, cfg, rows, metrics, files, out, (row_image, per_image))
    means = [metrics[f"{name}_loss_objective_{level_suffix(lv)}_mean"] for lv in cfg.levels]
    stds = [metrics[f"{name}_loss_objective_{level_suffix(lv)}_std"] for lv in cfg.levels]
    return list(cfg.levels), means, stds


def _measure(name, res, images, correct, cfg: EvalConfig, rows, metrics, files, out, per_image_of) -> None:
    """MS-SSIM, L2 and accuracy of one attack's named pairs at every lambda (and its grid figures).

    ``per_image_of``: (each row's test-set index, the per-image dict every metric's image means go to)."""
    device = images["x"].device
    row_image, per_image = per_image_of
    for li, level in enumerate(cfg.levels):
        sel = (res.level_index == li).to(device)
        own = {"images": row_image[sel.cpu()], "per_image": per_image}
        _add(rows, metrics, res.loss[sel], metric="loss", compared="objective", attack=name, level=level, **own)
        for pair in PAIRS[name]:
            a, b = (images[k][sel] for k in pair.split("_"))
            for metric, fn in IMAGE_METRICS.items():
                _add(rows, metrics, batched(fn, a, b), metric=metric, compared=pair, attack=name, level=level, **own)
        if correct is not None:
            _add(rows, metrics, correct[sel.cpu()], metric="acc", compared="source", attack=name, level=level, **own)
        if out is not None:
            files.append(_grid(out, name, level, images, sel, cfg.grid_images))


def _grid(out: Path, name: str, level: float, images: dict, sel: torch.Tensor, k: int) -> str:
    """The grid of the first ``k`` images of trial 0 (rows are ordered trial-major within a lambda)."""
    keys = ("x", "recx", "xa", "recxa", "xt") if name == "latent" else ("x", "recx", "xa", "recxa")
    pick = {key: images[key][sel][:k] for key in keys}
    title = f"{name} attack, lambda = {level:g}"
    path = out / f"grid_{name}_{level_suffix(level)}.png"
    return str(eval_plots.attack_grid(path, [pick[key] for key in keys], title=title))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = Parser(
        prog="python -m radae.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "checkpoint", help="a radae checkpoint file, or a training run's output folder (its checkpoint.pt)"
    )
    parser.add_argument("--out", help="output folder (default: eval/ beside the checkpoint)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    parser.add_argument("--data-dir", help="folder holding the dataset files (default: the search order of radae.data)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--threads", type=int, help="torch intra-op CPU threads (default: torch's choice)")
    short = argparse.SUPPRESS
    parser.add_argument("--images", dest="eval.images", default=short, help="test images attacked (eval.images)")
    parser.add_argument("--trials", dest="eval.trials", default=short, help="random starts per image (eval.trials)")
    parser.add_argument(
        "--levels", dest="eval.levels", nargs="+", default=short, help="L2 budgets lambda (eval.levels)"
    )
    parser.add_argument(
        "--inception-weights", dest="eval.inception_weights", default=short, help="Inception-v3 weights file"
    )
    parser.add_argument(
        "--no-fid", dest="eval.fid", action="store_const", const="false", default=short, help="skip FID"
    )
    add_section_arguments(parser, "eval")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in vars(args).items() if k.startswith("eval.")}
    try:
        check_section("eval", apply_overrides(RunConfig(), overrides).eval)  # bad values fail before any loading
        device = resolve_device(args.device)  # likewise an unknown or absent device
        run_cfg, model = load_model(args.checkpoint, device="cpu")
        if args.data_dir:
            overrides["data.data_dir"] = args.data_dir
        run_cfg = apply_overrides(run_cfg, overrides)
        data = load_dataset(run_cfg.data)
        given = Path(args.checkpoint).resolve()
        out = Path(args.out) if args.out else (given if given.is_dir() else given.parent) / "eval"
        result = evaluate(model.to(device), data, run_cfg.eval, device=device, out_dir=out, progress=not args.quiet)
    except (ConfigError, CheckpointError, DataError, fid.FIDError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(eval_plots.summary(result.metrics, run_cfg.eval.levels))
    print(f"wall time {result.metrics['eval_wall_s']:.1f} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
