"""Repeating every configuration of a sweep over S training seeds (a definition's ``seeds: S``).

A Tune trial of a seeded sweep carries its seed index ``i`` (0..S-1) under :data:`SEED_KEY` beside
the sampled params (a packed trial: in each member's params). The trial trains with
``train.seed = base train.seed + i``; everything else of the configuration is the same for its S
seeds. Every Parquet row and MLflow trial run carries (:func:`seed_columns`):

- ``seed``: the ``train.seed`` the trial trained with;
- ``config_key``: 12 hex digits of sha256 over the sorted sampled params, the seed excluded (also
  ``train.seed`` when the space searches it), so the S rows of a configuration share it;
- ``config_label``: the same params readable, e.g. ``loss.alpha=0.95 prior.num_modes=10``.

How Optuna sees the seeds (:class:`radae.sweep.searcher.SeedGroups`): one Optuna trial per
configuration, told the mean over its S seeds once all of them ended.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from radae.config import apply_overrides

SEED_KEY = "seed"  # a Tune trial's seed index i in 0..S-1 (train.seed = base + i)
SEED_FIELD = "train.seed"


def split_seed(params: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """(sampled params without the seed index, the seed index; 0 when the trial has none)."""
    own = dict(params)
    index = own.pop(SEED_KEY, 0)
    return own, int(index)


def seed_override(base_seed: int, index: int) -> dict[str, int]:
    """The dotted override giving seed index ``index`` its training seed."""
    return {SEED_FIELD: int(base_seed) + int(index)}


def config_key(params: Mapping[str, Any]) -> str:
    """12 hex digits of sha256 over the sorted params (seed excluded): the same for every seed of a configuration."""
    own = {k: v for k, v in params.items() if k not in (SEED_KEY, SEED_FIELD)}
    text = json.dumps(sorted(own.items()), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def config_label(params: Mapping[str, Any]) -> str:
    """``key=value`` of the sorted params (seed excluded), space-separated."""
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in (SEED_KEY, SEED_FIELD))


def seed_columns(params: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Row columns (and MLflow tags) naming a trial's seed and configuration."""
    return {"seed": int(seed), "config_key": config_key(params), "config_label": config_label(params)}


def check_seeds(value: Any, where: str = "seeds") -> int:
    """``value`` if it is an integer >= 1, else ValueError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where} must be an integer >= 1 (training seeds per configuration), got {value!r}")
    return value


def trial_config(space: Any, base: Any, params: Mapping[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(RunConfig, sampled params without the seed index, :func:`seed_columns`) of a Tune trial or pack member.

    ``space``: the sweep's :class:`radae.sweep.space.SearchSpace`; ``base``: its base RunConfig.
    """
    own, index = split_seed(params)
    cfg = space.to_config(base, own)
    if SEED_KEY in params:
        cfg = apply_overrides(cfg, seed_override(cfg.train.seed, index))
    return cfg, own, seed_columns(own, cfg.train.seed)


def seed_tags(columns: Mapping[str, Any]) -> dict[str, Any]:
    """MLflow tags of :func:`seed_columns` (``radae.seed``, ``radae.config_key``, ``radae.config_label``)."""
    return {f"radae.{k}": v for k, v in columns.items()}
