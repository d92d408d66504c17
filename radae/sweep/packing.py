"""Several trials per GPU: fractional GPUs per trial and packed trials, validated up front.

Two settings of a sweep definition (or the CLI's ``--gpus-per-trial``/``--pack-size``) decide how a
GPU is shared, and they multiply (docs/speed.md):

- ``gpus_per_trial`` (0 < x <= 1, default 1): the Ray resources of one trial (``{"gpu": x}`` for the
  ``direct`` executor, ``resources_per_worker={"GPU": x}`` in the TorchTrainer's ScalingConfig) and,
  inside the trial, ``torch.cuda.set_per_process_memory_fraction(x)`` so ``1/x`` processes on one
  GPU cannot starve each other of memory. Concurrency defaults to ``floor(cluster GPUs / x)``. On a
  CPU-only cluster it is validated and logged as a no-op.
- ``pack_size`` (integer >= 1, default 1 = off): configurations trained together in one trial with
  :func:`radae.fast.train_packed` (one ``torch.func.vmap`` step for all). The searcher
  (:class:`radae.sweep.searcher.OptunaSearcher`) asks Optuna for ``pack_size`` configurations per
  Tune trial; each is its own Optuna trial, Parquet row, MLflow run and evaluation, with the id
  ``<tune trial id>-m<k>`` (:func:`member_ids`). Searched keys that fix a pack's shapes
  (:data:`radae.fast.packed.SHARED_FIELDS`) are taken from the pack's first member.

:func:`validate_packing` refuses, before any trial, a pack of a model that cannot be packed
(not ``rae``, BatchNorm nets) or a grid that would put different architectures in one pack.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from radae.config import ConfigError, RunConfig, apply_overrides
from radae.data import dataset_info
from radae.fast.packed import SHARED_FIELDS, check_packable
from radae.models import build_networks

log = logging.getLogger(__name__)

RESOURCE_KEYS = ("gpus_per_trial", "pack_size", "pack_noise")
PACK_KEY = "pack"  # a packed Tune trial's config: {"pack": [params of member 0, member 1, ...]}
NOISE_MODES = ("member", "shared")
# CPU share of a torch-executor Tune function, which only waits on its TorchTrainer (whose worker trains).
TUNE_FUNCTION_CPU = 0.01


class ResourceError(ValueError):
    """An invalid trials-per-GPU setting; the message names it."""


@dataclass(frozen=True)
class TrialResources:
    """How much of a GPU one Tune trial takes and how many configurations it trains."""

    gpus_per_trial: float = 1.0
    pack_size: int = 1
    pack_noise: str = "member"

    def __post_init__(self) -> None:
        x = self.gpus_per_trial
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or not 0 < x <= 1:
            raise ResourceError(
                f"gpus_per_trial must be a number in (0, 1] (e.g. 0.25 = four trials per GPU), got {x!r}"
            )
        n = self.pack_size
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ResourceError(f"pack_size must be an integer >= 1 (1 = no packing), got {n!r}")
        if self.pack_noise not in NOISE_MODES:
            raise ResourceError(f"pack_noise must be one of {list(NOISE_MODES)}, got {self.pack_noise!r}")
        object.__setattr__(self, "gpus_per_trial", float(x))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> TrialResources:
        """From a definition's top-level keys (missing ones keep their defaults)."""
        return cls(**{k: raw[k] for k in RESOURCE_KEYS if raw.get(k) is not None})

    @property
    def packed(self) -> bool:
        return self.pack_size > 1

    @property
    def trials_per_gpu(self) -> int:
        """Trials (processes) one GPU holds at once."""
        return max(1, math.floor(1 / self.gpus_per_trial + 1e-9))

    def concurrency(self, cluster_gpus: float, use_gpu: bool, requested: int | None = None) -> int:
        """Trials at once: ``requested`` if given, else ``floor(GPUs / gpus_per_trial)`` (1 without GPUs)."""
        if requested is not None:
            return requested
        if not use_gpu or cluster_gpus <= 0:
            return 1
        return max(1, math.floor(cluster_gpus / self.gpus_per_trial + 1e-9))

    def tune_resources(self, executor: str, use_gpu: bool) -> dict[str, float]:
        """``tune.with_resources`` of the Tune function (the torch executor's worker holds the GPU)."""
        if executor == "torch":
            return {"cpu": TUNE_FUNCTION_CPU}
        return {"cpu": 1, "gpu": self.gpus_per_trial if use_gpu else 0}

    def worker_resources(self, cpus: float, use_gpu: bool) -> dict[str, float]:
        """``ScalingConfig(resources_per_worker=...)`` of a Ray Train worker of the torch executor.

        The Tune function that waits on the trainer holds :data:`TUNE_FUNCTION_CPU`; each worker
        asks ``cpus`` minus that share, so a trial (function + one worker) takes exactly ``cpus``
        and N CPUs train N trials at once. Asking the full ``cpus`` left the second trial's worker
        0.02 CPU short on a 2-CPU node: it never started (``WorkerGroupStartupTimeoutError``).
        """
        cpu = round(max(cpus - TUNE_FUNCTION_CPU, TUNE_FUNCTION_CPU), 4)  # Ray counts resources in 1e-4 units
        return {"CPU": cpu, "GPU": self.gpus_per_trial} if use_gpu else {"CPU": cpu}

    def tune_samples(self, configurations: int) -> int:
        """Tune trials needed for ``configurations`` members (the last pack may be smaller)."""
        return math.ceil(configurations / self.pack_size)

    def describe(self) -> dict[str, Any]:
        return {
            "sweep.gpus_per_trial": self.gpus_per_trial,
            "sweep.pack_size": self.pack_size,
            "sweep.pack_noise": self.pack_noise,
        }


def cap_gpu_memory(fraction: float | None) -> str:
    """In a trial: cap this process's CUDA memory at ``fraction`` of the device; says what it did."""
    import torch

    if fraction is None or fraction >= 1:
        return "no GPU memory cap (a whole GPU per trial)"
    if not torch.cuda.is_available():
        msg = f"gpus_per_trial {fraction}: no CUDA device in this process, the memory cap is a no-op"
        log.info(msg)
        return msg
    device = torch.cuda.current_device()
    torch.cuda.set_per_process_memory_fraction(float(fraction), device)
    msg = f"capped CUDA memory of this process at {fraction:.3g} of device {device}"
    log.info(msg)
    return msg


def member_ids(trial_id: str, count: int) -> list[str]:
    """Deterministic ids of a pack's members: ``<tune trial id>-m<k>`` (Parquet key, MLflow tag)."""
    return [f"{trial_id}-m{k}" for k in range(count)]


def member_metric(k: int, metric: str) -> str:
    """Key of member ``k``'s objective value in a packed trial's final report (told to Optuna)."""
    return f"pack.m{k}.{metric}"


def shared_keys(space_keys: Any) -> list[str]:
    """Searched keys every member of a pack must share (taken from the pack's first member)."""
    return sorted(k for k in space_keys if k in SHARED_FIELDS or k == "adv.pgd_steps")


def validate_packing(space: Any, base: RunConfig, resources: TrialResources) -> None:
    """Raise :class:`ResourceError` when ``pack_size > 1`` cannot work for this space and base config."""
    if not resources.packed:
        return

    try:
        cfgs = [apply_overrides(base, {"train.out_dir": f"{base.train.out_dir}/m{k}"}) for k in range(2)]
        check_packable(cfgs)
    except ConfigError as exc:
        raise ResourceError(f"pack_size {resources.pack_size}: {exc}") from None
    shape = dataset_info(base.data.name).image_shape
    enc, dec = build_networks(base.model.arch, shape, base.model.latent_dim)
    if any(True for _ in enc.buffers()) or any(True for _ in dec.buffers()):
        raise ResourceError(
            f"pack_size {resources.pack_size}: model.arch {base.model.arch!r} has BatchNorm buffers; "
            "packing needs buffer-free nets (mlp); set pack_size: 1"
        )
    if space.is_grid:
        varying = [k for k in shared_keys(space.params) if len(space.params[k].values) > 1]
        if varying:
            raise ResourceError(
                f"pack_size {resources.pack_size}: the grid varies {varying}, which every member of a pack "
                "must share; run it unpacked or split it into one sweep per value"
            )
