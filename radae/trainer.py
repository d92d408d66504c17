"""The training loop behind ``python -m radae.train`` (CLI in :mod:`radae.train`).

:func:`train` checks everything first (registry names, the output folder, the data), then runs
``cfg.train.epochs`` epochs of Adam on ``model.loss`` (eq. 9 for the robust autoencoder) with the
data resident on the device, validates each epoch on the same objective, lets
``ReduceLROnPlateau`` decay the learning rate on the validation loss, writes per epoch an
atomic checkpoint and ``metrics.jsonl`` (:class:`radae.runfolder.RunFolder`) and calls ``on_epoch``.

Determinism: the model is initialised from ``torch.manual_seed(seed)``; batch order comes from a
permutation generator and latent noise / attack starts from a noise generator, both on the
device and both saved in the checkpoint with the global RNG state, so ``resume=True`` continues
bit for bit (on CPU) where the interrupted run stopped. A non-finite loss raises
:class:`TrainingDiverged` and never writes a checkpoint, so the last good one survives.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from radae.config import ConfigError, RunConfig, TrainConfig
from radae.data import dataset_info, load_dataset
from radae.models import Autoencoder, create_model
from radae.names import check_names
from radae.plots import save_reconstructions, save_samples
from radae.precision import check_precision, network_precision
from radae.probe import make_probe, probe_metrics
from radae.rng import rng_state, set_rng_state
from radae.runfolder import RunFolder, TrainResult
from radae.trainsteps import make_optimizer, make_train_step, resolve_step_mode


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says when and which part."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; anything else as given (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"train.device must be cpu, cuda, cuda:N or auto, got {name!r}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but no CUDA device is available")
    return device


def validate(cfg: RunConfig) -> torch.device:
    """Check the names the registries resolve (:func:`radae.names.check_names`) and the device; returns the device."""
    check_names(cfg)
    device = resolve_device(cfg.train.device)
    resolve_step_mode(cfg.train.step_mode, device)
    check_precision(cfg.train.precision, device, "train.precision")
    return device


def load_data(cfg: RunConfig, device: torch.device, data: Any) -> Any:
    """Splits on ``device``: the caller's, or loaded from cfg.data (DataError before any training)."""
    if data is None:
        data = load_dataset(cfg.data, device)
    if data.info.name != cfg.data.name:
        raise ConfigError(f"data.name is {cfg.data.name!r} but the data passed in is {data.info.name!r}")
    if len(data.train) < cfg.train.batch_size:
        raise ConfigError(f"train.batch_size {cfg.train.batch_size} exceeds the {len(data.train)} training images")
    return data.to(device)


def _first_non_finite(values: torch.Tensor, names: list[str]) -> tuple[int, list[str]] | None:
    """(row, names of the non-finite parts in it) of the first row of ``values`` (steps, parts) with NaN/inf."""
    bad = ~torch.isfinite(values)
    if not bad.any():
        return None
    row = int(bad.any(dim=1).nonzero()[0])
    return row, [names[int(i)] for i in bad[row].nonzero().flatten()]


@torch.no_grad()
def run_generators(seed: int, device: torch.device) -> dict[str, torch.Generator]:
    """A run's random streams on ``device``: batch order ``perm`` (``seed``) and step noise ``noise``
    (``seed + 1``); validation draws from a fresh generator seeded :func:`validation_seed`."""
    return {
        "perm": torch.Generator(device=device).manual_seed(seed),
        "noise": torch.Generator(device=device).manual_seed(seed + 1),
    }


def validation_seed(seed: int) -> int:
    """The seed of every epoch's validation generator (the same draws each epoch: comparable values)."""
    return seed + 2


def lr_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """``ReduceLROnPlateau`` on the validation loss with ``train.lr_decay``, ``lr_patience`` and ``min_lr``."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.lr_decay, patience=cfg.lr_patience, min_lr=cfg.min_lr
    )


def steps_per_epoch(n_train: int, cfg: TrainConfig) -> int:
    """Full batches of ``train.batch_size`` in ``n_train`` images, capped by ``train.max_steps_per_epoch``."""
    steps = n_train // cfg.batch_size
    return steps if cfg.max_steps_per_epoch is None else min(steps, cfg.max_steps_per_epoch)


def full_batches(split: Any, batch_size: int) -> Iterator[torch.Tensor]:
    """``split``'s images in order, in full batches of ``batch_size`` (one smaller batch if the split is)."""
    size = min(batch_size, len(split))
    for b in range(len(split) // size):
        yield split.get(torch.arange(b * size, (b + 1) * size, device=split.device))


def evaluate_objective(model: Autoencoder, split: Any, batch_size: int, seed: int) -> dict[str, float]:
    """The training objective (and its parts) on ``split`` in eval mode, plus the clean rec MSE.

    A fresh generator seeded with ``seed`` draws the noise and attack starts, so values are
    comparable across epochs. Full batches only (the eq. 10 weights assume batch size N), unless
    the split is smaller than one batch.
    """
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=split.device).manual_seed(seed)
    sums: dict[str, torch.Tensor] = {}
    batches = 0
    for x in full_batches(split, batch_size):
        out = model.loss(x, generator)
        values = {"loss": out.total, **out.parts, "rec_mse": F.mse_loss(model.reconstruct(x), x)}
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value.detach().float()
        batches += 1
    model.train(was_training)
    return {key: float(total) / batches for key, total in sums.items()}


@torch.no_grad()
def reconstruction_mse(model: Autoencoder, split: Any, batch_size: int) -> float:
    """Per-pixel MSE between every image of ``split`` and its clean reconstruction (eval mode)."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=split.device)
    for start in range(0, len(split), batch_size):
        x = split.get(torch.arange(start, min(start + batch_size, len(split)), device=split.device))
        total += F.mse_loss(model.reconstruct(x), x, reduction="sum")
    model.train(was_training)
    return float(total) / (len(split) * split.images[0].numel())


def _print_epoch(m: dict[str, Any], epochs: int) -> None:
    parts = " ".join(f"{k[6:]} {m[k]:.4g}" for k in m if k.startswith("train_") and k != "train_loss")
    print(
        f"epoch {m['epoch']}/{epochs}  train loss {m['train_loss']:.4f} ({parts})  "
        f"val loss {m['val_loss']:.4f}  val rec MSE {m['val_rec_mse']:.5f}  lr {m['lr']:.2e}  "
        f"{m['epoch_seconds']:.1f}s  {m['steps_per_second']:.1f} steps/s",
        flush=True,
    )


def train(
    cfg: RunConfig,
    *,
    resume: bool = False,
    on_epoch: Callable[[dict[str, Any], str], None] | None = None,
    data: Any = None,
    progress: bool = True,
) -> TrainResult:
    """Train the model ``cfg`` describes; see the module docstring. Returns a :class:`TrainResult`."""
    device = validate(cfg)
    folder = RunFolder(cfg.train.out_dir)
    state = folder.check(cfg, resume)
    seed = cfg.train.seed
    torch.manual_seed(seed)
    # The model first (the image shape needs no I/O): settings only the model checks (e.g. an
    # architecture a baseline does not support) fail before the data is read or a file is written.
    model = create_model(cfg, dataset_info(cfg.data.name).image_shape)
    data = load_data(cfg, device, data)
    model = model.to(device)
    folder.start(cfg, state)

    optimizer = make_optimizer(model, cfg)
    scheduler = lr_scheduler(optimizer, cfg.train)
    generators = run_generators(seed, device)
    start_epoch, best_val, wall_before = 1, math.inf, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if device.type != "cuda":
            # A checkpoint of a CUDA-graph run stores Adam with capturable=True, which is for
            # device step counters; the eager CPU step wants it off (the graph step turns it back on).
            for group in optimizer.param_groups:
                group["capturable"] = False
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], generators, device)
        start_epoch, best_val = int(state["epoch"]) + 1, float(state["best_val"])
        wall_before = float(state.get("wall_seconds", 0.0))

    step_fn = make_train_step(model, optimizer, cfg, device)
    probe = make_probe(cfg.probe, data, device)  # robustness along training (radae/probe.py)
    n_train, batch = len(data.train), cfg.train.batch_size
    steps = steps_per_epoch(n_train, cfg.train)
    if progress:
        print(
            f"training {cfg.model.name} on {cfg.data.name} ({n_train} train / {len(data.val)} val images, "
            f"{steps} steps per epoch) on {device}; outputs in {folder.root}",
            flush=True,
        )
    t_run = time.perf_counter()
    for epoch in range(start_epoch, cfg.train.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n_train, generator=generators["perm"], device=device)
        rows: list[torch.Tensor] = []
        names: list[str] = []
        for i in range(steps):
            values = step_fn(data.train.get(perm[i * batch : (i + 1) * batch]), generators["noise"])
            names = list(values)
            rows.append(torch.stack([v.detach().float() for v in values.values()]))
            if device.type == "cpu" or (i + 1) % 50 == 0 or i + 1 == steps:
                bad = _first_non_finite(torch.stack(rows[-50:]), names)
                if bad is not None:
                    step = len(rows) - min(len(rows), 50) + bad[0] + 1
                    raise TrainingDiverged(
                        f"non-finite training loss at epoch {epoch}, step {step}: {', '.join(bad[1])} not finite; "
                        f"stopped without writing a checkpoint (the last good one, if any, is {folder.checkpoint})"
                    )
        train_means = torch.stack(rows).mean(dim=0).tolist()
        with network_precision(model, cfg.train.precision, device):
            val = evaluate_objective(model, data.val, batch, validation_seed(seed))
        bad_val = [k for k, v in val.items() if not math.isfinite(v)]
        if bad_val:
            raise TrainingDiverged(
                f"non-finite validation {', '.join(bad_val)} at epoch {epoch}; stopped without writing a checkpoint"
            )
        scheduler.step(val["loss"])
        best_val = min(best_val, val["loss"])
        seconds = time.perf_counter() - t0
        metrics = {
            "epoch": epoch,
            **{f"train_{k}": v for k, v in zip(names, train_means, strict=True)},
            **{f"val_{k}": v for k, v in val.items()},
            "lr": optimizer.param_groups[0]["lr"],
            "best_val": best_val,
            "steps": steps,
            "epoch_seconds": seconds,
            "steps_per_second": steps / seconds,
            **probe_metrics(probe, model, epoch),  # after the epoch's timing: probe_seconds is its own
        }
        folder.save_epoch(
            metrics,
            {
                "config": cfg.to_dict(),
                "image_shape": tuple(data.info.image_shape),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(generators, device),
                "best_val": best_val,
                "wall_seconds": wall_before + time.perf_counter() - t_run,
            },
        )
        if progress:
            _print_epoch(metrics, cfg.train.epochs)
        if on_epoch is not None:
            on_epoch(metrics, str(folder.checkpoint))
    return finish_run(cfg, model, data, folder, device, wall_before + time.perf_counter() - t_run, progress)


def finish_run(
    cfg: RunConfig,
    model: Autoencoder,
    data: Any,
    folder: RunFolder,
    device: torch.device,
    wall: float,
    progress: bool,
    extra: dict[str, Any] | None = None,
) -> TrainResult:
    """A finished run's figures, test reconstruction error and ``summary.json`` (plus ``extra`` keys)."""
    out, history, paths = folder.root, folder.history, folder.paths()
    paths["samples.png"] = save_samples(model, folder.path("samples.png"), seed=cfg.train.seed)
    test_images = data.test.get(torch.arange(min(len(data.test), 32), device=device))
    paths["reconstructions.png"] = save_reconstructions(model, test_images, folder.path("reconstructions.png"))
    test_rec_mse = reconstruction_mse(model, data.test, cfg.train.batch_size)
    best = min(history, key=lambda m: m["val_loss"]) if history else {}
    summary = {
        "final": history[-1] if history else {},
        "best_val": best.get("val_loss"),
        "best_epoch": best.get("epoch"),
        "test_rec_mse": test_rec_mse,
        "epochs": len(history),
        "wall_seconds": wall,
        "device": str(device),
        "data_source": getattr(data, "source", None),
        "paths": {name: str(path) for name, path in paths.items()},
        **(extra or {}),
    }
    folder.write_summary(summary)
    if progress:
        print(
            f"done in {wall:.0f}s: test rec MSE {test_rec_mse:.5f}; outputs in {out}/ "
            f"({', '.join(sorted(p.name for p in paths.values()))})",
            flush=True,
        )
    return folder.result(summary)
