"""A configuration's values for :mod:`radae.analysis.intervals`: per seed x image when the sweep stored them,
else per seed mean, std and n from its trial rows.

Per-image tables (:mod:`radae.store.images`) are long: one row per trial, image and
metric, columns ``sweep_id``, ``trial_id``, ``image`` (test-set index), ``name`` (the flat metric name
without ``_mean``, e.g. ``max_damage_msssim_paper_recx_recxa_l3`` or ``robustness``) and ``value``
(the mean over the image's random starts). A metric uses them when every trial row of the
configuration has the metric for the same images; otherwise it falls back to the rows' ``_mean`` /
``_std`` columns (:class:`radae.analysis.intervals.Samples`, parametric).
"""

from __future__ import annotations

import math

import pandas as pd

from radae.analysis.intervals import Samples
from radae.objective import LATENT_KEY, LATENT_PAPER_KEY, MAXDAMAGE_KEY, MAXDAMAGE_PAPER_KEY, level_tag

# Derived metrics without a recorded std: the (latent, max-damage) templates their std bound comes from.
DERIVED = {
    "metric.robustness": (LATENT_KEY, MAXDAMAGE_KEY),
    "metric.robustness_paper": (LATENT_PAPER_KEY, MAXDAMAGE_PAPER_KEY),
}


def image_name(metric: str) -> str:
    """``metric.x_mean`` -> ``x``: the per-image table's name of a trial row's metric column."""
    return metric.removeprefix("metric.").removesuffix("_mean")


def _ids(rows: pd.DataFrame) -> pd.Series:
    sweep = rows["sweep_id"].astype(str) if "sweep_id" in rows else pd.Series("", index=rows.index)
    return sweep + "/" + rows["trial_id"].astype(str)


def per_image(rows: pd.DataFrame, metric: str, images: pd.DataFrame | None) -> Samples | None:
    """Seeds x images of ``metric`` for ``rows`` when ``images`` holds it for every row on the same images."""
    if images is None or images.empty or rows.empty or "trial_id" not in rows:
        return None
    ids = _ids(rows)
    own = images[images["name"] == image_name(metric)]
    own = own.assign(_id=_ids(own))
    own = own[own["_id"].isin(set(ids))]
    if own.empty:
        return None
    table = own.pivot_table(index="_id", columns="image", values="value", aggfunc="mean")
    if set(table.index) != set(ids) or table.isna().any().any():
        return None
    return Samples.per_image(table.to_numpy(), tuple(table.columns))


def _images_per_trial(rows: pd.DataFrame, metric: str) -> int:
    col = "config.eval.fid_runs" if "fid" in metric else "config.eval.images"
    values = pd.to_numeric(rows[col], errors="coerce").dropna() if col in rows else pd.Series(dtype=float)
    return int(values.min()) if len(values) else 0


def _std(rows: pd.DataFrame, metric: str) -> pd.Series:
    """Each row's std of ``metric`` over images x starts (a bound for R); NaN where it is not recorded."""
    nan = pd.Series(math.nan, index=rows.index)
    if metric in DERIVED:
        latent, damage = DERIVED[metric]
        total, count = pd.Series(0.0, index=rows.index), 0
        levels = rows["config.eval.levels"].iloc[0] if "config.eval.levels" in rows else (1.0, 3.0, 5.0)
        for level in levels:
            tag = level_tag(float(level))
            cols = [f"metric.{t.format(level=tag).removesuffix('_mean')}_std" for t in (latent, damage)]
            if any(c not in rows for c in cols):
                return nan
            total = total + (rows[cols[0]].astype(float) + rows[cols[1]].astype(float)) / 2
            count += 1
        return total / count if count else nan
    std = metric.removesuffix("_mean") + "_std"
    return rows[std].astype(float) if metric.endswith("_mean") and std in rows else nan


def samples(rows: pd.DataFrame, metric: str, images: pd.DataFrame | None = None) -> Samples:
    """``metric``'s :class:`Samples` over the (completed, one configuration's) ``rows``."""
    found = per_image(rows, metric, images)
    if found is not None:
        return found
    if metric not in rows:
        return Samples.parametric([], [], 0)
    keep = rows[metric].astype(float).notna()
    rows = rows[keep]
    return Samples.parametric(
        rows[metric].astype(float).to_numpy(), _std(rows, metric).to_numpy(), _images_per_trial(rows, metric)
    )
