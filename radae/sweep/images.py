"""A sweep's per-image table: every attacked image's metrics per trial, stored in S3 beside the trial rows.

One Parquet object per trial (:func:`radae.sweep.results.write_images`), long format, one row per
image and metric::

    sweep_id, trial_id, seed, config_key, image, name, value

``image`` is the test-set index (every configuration and seed of a sweep attacks the same images
with the same random starts: both come from ``eval.seed``, never from ``train.seed``); ``name`` is
the flat metric name without ``_mean`` (``max_damage_msssim_paper_recx_recxa_l3``,
``clean_msssim_x_recx``, ``latent_acc_source_l5``, ...), plus ``robustness`` and ``robustness_paper``
per image (R of radae/sweep/objective.py on the image's values: R is linear, so their mean over
images is the trial's R); ``value`` is the image's mean over its random starts.
:mod:`radae.sweep.samples` reads it back for the intervals of :mod:`radae.sweep.intervals`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from radae.sweep import results
from radae.sweep.objective import ObjectiveError, robustness, robustness_paper
from radae.sweep.settings import StorageSettings

COLUMNS = ("sweep_id", "trial_id", "image", "name", "value")


def with_robustness(
    per_image: Mapping[str, Mapping[int, float]], levels: Sequence[float]
) -> dict[str, dict[int, float]]:
    """``per_image`` plus ``robustness`` and ``robustness_paper`` per image (left out when a term is missing)."""
    out = {name: dict(values) for name, values in per_image.items()}
    images = sorted({i for values in per_image.values() for i in values})
    for name, fn in (("robustness", robustness), ("robustness_paper", robustness_paper)):
        try:
            out[name] = {i: fn({f"{n}_mean": v[i] for n, v in per_image.items() if i in v}, levels) for i in images}
        except ObjectiveError:
            continue
    return out


def records(
    per_image: Mapping[str, Mapping[int, float]],
    *,
    sweep_id: str,
    trial_id: str,
    columns: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Long rows of one trial (``columns``: extra columns every row carries, e.g. ``seed``, ``config_key``)."""
    extra = dict(columns or {})
    return [
        {"sweep_id": sweep_id, "trial_id": trial_id, **extra, "image": int(img), "name": name, "value": float(v)}
        for name, values in per_image.items()
        for img, v in values.items()
        if v is not None and math.isfinite(v)
    ]


def load_images(sweep_ids: Sequence[str], parquet: Sequence[str | Path]) -> pd.DataFrame | None:
    """Per-image tables of ``sweep_ids`` (from the bucket of ``$RADAE_S3_*``) and of ``parquet`` files, joined;
    None when there are none (the intervals then fall back to the rows' means and stds)."""
    frames = []
    for path in parquet:
        if not Path(path).is_file():
            raise ValueError(f"--images {path}: no such file")
        frames.append(pd.read_parquet(path))
    if sweep_ids:
        settings = StorageSettings.from_env()
        frames += [results.read_images(settings, s, as_pandas=True) for s in sweep_ids]
    frames = [f for f in frames if len(f)]
    for frame in frames:
        missing = [c for c in COLUMNS if c not in frame]
        if missing:
            raise ValueError(f"a per-image table lacks column {missing[0]!r} (columns: {list(frame.columns)[:8]})")
    return pd.concat(frames, ignore_index=True) if frames else None
