"""What an analysis reads, and the one place it meets the store: a sweep's rows and per-image tables (from
the bucket of ``$RADAE_S3_*`` or from copied Parquet files), its MLflow runs, and its Optuna study page.

    load_table(sweep_id | parquet)             the rows, one per trial (:mod:`radae.store.results`)
    load_images(sweep_ids, parquet)            the per-image tables (:mod:`radae.store.images`), or None
    open_tracker(mlflow_uri, experiment)       an MLflow client for run links and attack grids, or None
    study_link(dashboard, study_db, sweep_id)  optuna-dashboard's page of the sweep's study

``dashboards/`` read through this module only; it names the stores' defaults (:data:`DEFAULT_EXPERIMENT`,
:data:`DEFAULT_STUDY_DB`) so their options show the same defaults as a sweep's.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from radae.store.images import COLUMNS
from radae.store.results import read_images, read_sweep
from radae.store.settings import StorageSettings
from radae.store.studies import DEFAULT_STUDY_DB, study_page
from radae.store.tracking import DEFAULT_EXPERIMENT, Tracker

__all__ = ["DEFAULT_EXPERIMENT", "DEFAULT_STUDY_DB", "load_images", "load_table", "open_tracker", "study_link"]


def load_table(sweep_id: str | None = None, parquet: str | Path | None = None):
    """A sweep's rows as a pandas DataFrame: from ``parquet`` (a copied table), else from the bucket of
    ``$RADAE_S3_*`` (:func:`radae.store.results.read_sweep`). Raises ValueError naming what is missing."""
    if parquet:
        import pyarrow.parquet as pq

        if not Path(parquet).is_file():
            raise ValueError(f"--parquet {parquet}: no such file")
        return pq.read_table(parquet).to_pandas()
    if not sweep_id:
        raise ValueError("give a sweep id or --parquet FILE")

    df = read_sweep(StorageSettings.from_env(), sweep_id, as_pandas=True)
    if df.empty:
        raise ValueError(f"no rows for sweep {sweep_id!r} in the bucket of $RADAE_S3_ENDPOINT")
    return df


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
        frames += [read_images(settings, s, as_pandas=True) for s in sweep_ids]
    frames = [f for f in frames if len(f)]
    for frame in frames:
        missing = [c for c in COLUMNS if c not in frame]
        if missing:
            raise ValueError(f"a per-image table lacks column {missing[0]!r} (columns: {list(frame.columns)[:8]})")
    return pd.concat(frames, ignore_index=True) if frames else None


def open_tracker(mlflow_uri: str | None, experiment: str = DEFAULT_EXPERIMENT) -> Tracker | None:
    """An MLflow client of ``experiment`` at ``mlflow_uri``; None (with a warning on stderr) when no URI is
    given or the server does not answer: a report is still useful without run links and grids."""
    if not mlflow_uri:
        return None
    try:
        return Tracker(mlflow_uri, experiment)
    except Exception as exc:  # noqa: BLE001 - the page is still useful without runs
        print(f"warning: MLflow at {mlflow_uri} not reachable ({exc}); no run links or grids from it", file=sys.stderr)
        return None


def study_link(dashboard: str | None, study_db: str | Path, sweep_id: str) -> str | None:
    """optuna-dashboard's page of the sweep's study (its list when the file lacks it); None without a dashboard."""
    return study_page(dashboard, study_db, sweep_id) if dashboard else None
