"""What an analysis reads, and the one place it meets the store: a sweep's rows and per-image tables (from
the bucket of ``$RADAE_S3_*`` or from copied Parquet files), its MLflow runs, and its Optuna study page.

    load_table(sweep_id | parquet)             the rows, one per trial (:mod:`radae.store.results`)
    load_images(sweep_ids, parquet)            the per-image tables (:mod:`radae.store.images`), or None
    open_tracker(mlflow_uri, experiment)       an MLflow client for run links and attack grids, or None
    study_link(dashboard, study_db, sweep_id)  optuna-dashboard's page of the sweep's study
    load_runs(folders, sweep_id, eval_dir)     rows and per-image table of ``python -m radae.train`` runs
                                               evaluated with ``python -m radae.evaluate``, in a sweep's format

``dashboards/`` read through this module only; it names the stores' defaults (:data:`DEFAULT_EXPERIMENT`,
:data:`DEFAULT_STUDY_DB`) so their options show the same defaults as a sweep's.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from radae.config import ConfigError, RunConfig
from radae.objective import ObjectiveError, make_objective
from radae.store.images import COLUMNS
from radae.store.results import make_row, read_images, read_sweep
from radae.store.settings import StorageSettings
from radae.store.studies import DEFAULT_STUDY_DB, study_page
from radae.store.tracking import DEFAULT_EXPERIMENT, Tracker

__all__ = [
    "DEFAULT_EXPERIMENT",
    "DEFAULT_STUDY_DB",
    "load_images",
    "load_runs",
    "load_table",
    "open_tracker",
    "study_link",
]
# Settings that differ between runs without making them different configurations: the seed, paths, the
# device, and the probe (it measures along training without touching the model or the training RNG).
NOT_PARAMS = ("train.seed", "train.out_dir", "data.data_dir", "train.device", "data.download", "probe.")


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


def _read_run(folder: Path, eval_dir: str) -> tuple[RunConfig, dict, pd.DataFrame | None]:
    """(config, eval.json, images.parquet or None) of one evaluated run folder; ValueError naming what is missing."""
    evaluated = folder / eval_dir / "eval.json"
    for need in (folder / "config.json", evaluated):
        if not need.is_file():
            raise ValueError(f"{folder}: no {need.relative_to(folder)} (train with radae.train, then radae.evaluate)")
    summary = folder / "summary.json"  # radae.train's: training wall time and device (absent: not recorded)
    try:
        cfg = RunConfig.from_dict(json.loads((folder / "config.json").read_text()))
        doc = json.loads(evaluated.read_text())
        if summary.is_file():
            doc["train_summary"] = json.loads(summary.read_text())
    except (json.JSONDecodeError, ConfigError) as exc:
        raise ValueError(f"{folder}: unreadable config.json, summary.json or {eval_dir}/eval.json ({exc})") from exc
    images = folder / eval_dir / "images.parquet"
    return cfg, doc, pd.read_parquet(images) if images.is_file() else None


def load_runs(
    folders: Sequence[str | Path], sweep_id: str, eval_dir: str = "eval"
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(rows, per-image table) of training runs in a sweep's format, for the tables and intervals of
    :mod:`radae.analysis`: one completed row per folder (trial id = the folder's name, ``seed`` = its
    ``train.seed``, ``param.*`` = the settings that differ between the folders, the seed and paths aside,
    metrics = its ``<eval_dir>/eval.json`` plus R, FID and score of :mod:`radae.objective`; ``wall_seconds`` =
    training (its ``summary.json``) + evaluation), and the
    folders' ``<eval_dir>/images.parquet`` under the same ids (None when any folder lacks one: the
    intervals then fall back to the rows' means and stds). ValueError naming the folder that is not an
    evaluated run."""
    if not folders:
        raise ValueError("no run folders given")
    runs = [(Path(f), *_read_run(Path(f), eval_dir)) for f in folders]
    names = [f.name for f, *_ in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"run folders must have distinct names (they become trial ids): {sorted(names)}")
    flats = [cfg.flat() for _, cfg, _, _ in runs]
    varying = sorted(k for k in flats[0] if not k.startswith(NOT_PARAMS) and len({json.dumps(f[k]) for f in flats}) > 1)
    objective = make_objective("scalar")
    rows, tables = [], []
    for (folder, cfg, doc, images), flat in zip(runs, flats, strict=True):
        metrics = dict(doc["metrics"])
        try:
            metrics.update(objective.derive(metrics, cfg.eval.levels))
        except ObjectiveError as exc:
            raise ValueError(f"{folder}: {exc}") from exc
        trained = doc.get("train_summary", {})
        train_s, eval_s = float(trained.get("wall_seconds", "nan")), float(doc.get("wall_s", "nan"))
        rows.append(
            make_row(
                sweep_id=sweep_id,
                trial_id=folder.name,
                status="completed",
                # the evaluation's own settings (radae.evaluate's overrides) over the training run's defaults
                config={**flat, **{f"eval.{k}": v for k, v in doc["eval_config"].items()}},
                params={k: flat[k] for k in varying},
                metrics=metrics,
                timings={"train_seconds": train_s, "eval_seconds": eval_s, "wall_seconds": train_s + eval_s},
                extra={"seed": cfg.train.seed, "executor": "radae.train", "device": trained.get("device")},
            )
        )
        if images is not None:  # the per-image table's columns (radae.store.images), finite values only
            finite = images[images["value"].astype(float).map(math.isfinite)]
            tables.append(finite.assign(sweep_id=sweep_id, trial_id=folder.name)[list(COLUMNS)])
    images = pd.concat(tables, ignore_index=True) if len(tables) == len(runs) else None
    return pd.DataFrame.from_records(rows), images
