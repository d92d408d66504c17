"""A sweep's per-image table: every attacked image's metrics per trial, stored in S3 beside the trial rows.

One Parquet object per trial (:func:`radae.store.results.write_images`), long format, one row per
image and metric::

    sweep_id, trial_id, seed, config_key, image, name, value

``image`` is the test-set index (every configuration and seed of a sweep attacks the same images
with the same random starts: both come from ``eval.seed``, never from ``train.seed``); ``name`` is
the flat metric name without ``_mean`` (``max_damage_msssim_paper_recx_recxa_l3``,
``clean_msssim_x_recx``, ``latent_acc_source_l5``, ...), plus ``robustness`` and ``robustness_paper``
per image (:func:`radae.objective.with_robustness`: R is linear, so their mean over images is the
trial's R); ``value`` is the image's mean over its random starts.
:mod:`radae.analysis.samples` reads it back for the intervals of :mod:`radae.analysis.intervals`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

COLUMNS = ("sweep_id", "trial_id", "image", "name", "value")


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
