"""One Parquet object per trial in S3-compatible storage, partitioned by sweep; read a sweep back.

Layout (hive-style, so Spark/DuckDB/pyarrow datasets see a ``sweep`` partition column)::

    s3://BUCKET/PREFIX/results/sweep=<sweep_id>/trial=<trial_id>.parquet

The key is a pure function of (sweep, trial), and a trial's row is written with one PUT that
replaces any earlier object, so a retried, restored or repeated sweep overwrites its rows: it
never duplicates or loses one. Every row is passed through :func:`radae.sweep.settings.scrub`.

Row columns: ``sweep_id``, ``trial_id``, ``status`` (completed, pruned, error), timings
(``started_at``, ``finished_at`` in Unix seconds, ``train_seconds``, ``eval_seconds``,
``wall_seconds``), ``attempt``, ``resumed_from_epoch``, ``mlflow_run_id`` and ``mlflow_experiment_id``
(the trial's MLflow run, for links from reports; absent on rows of pruned or failed trials), ``config.<section.field>`` for the
resolved RunConfig, ``param.<key>`` for the sampled values and ``metric.<name>`` for every final
metric (evaluation metrics plus ``robustness``, ``fid``, ``score``).
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from radae.sweep.settings import StorageSettings, scrub

_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
# Row writes retried after pyarrow's own retries gave up (backoff 2, 4, 8, ... s, capped at 30 s).
WRITE_ATTEMPTS = 5
log = logging.getLogger(__name__)


class ResultsError(RuntimeError):
    """A results object could not be read or written; the message names its key."""


def check_id(kind: str, value: str) -> str:
    """``value`` if it can be part of an object key, else :class:`ResultsError` naming it."""
    if not _ID.match(value or ""):
        raise ResultsError(f"{kind} {value!r} must match [A-Za-z0-9_.-]+ (it is part of an object key)")
    return value


def sweep_dir(settings: StorageSettings, sweep_id: str) -> str:
    """``bucket/prefix/results/sweep=<id>`` (pyarrow path, no scheme)."""
    return settings.key("results", f"sweep={check_id('sweep id', sweep_id)}", with_bucket=True)


def trial_path(settings: StorageSettings, sweep_id: str, trial_id: str) -> str:
    """Deterministic object path of one trial's row."""
    return f"{sweep_dir(settings, sweep_id)}/trial={check_id('trial id', trial_id)}.parquet"


def make_row(
    *,
    sweep_id: str,
    trial_id: str,
    status: str,
    config: Mapping[str, Any],
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    timings: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A flat row; tuples become lists, non-scalar metrics are JSON strings."""
    row: dict[str, Any] = {"sweep_id": sweep_id, "trial_id": trial_id, "status": status}
    row.update(timings)
    row.update(extra or {})
    row.update({f"config.{k}": list(v) if isinstance(v, tuple) else v for k, v in config.items()})
    row.update({f"param.{k}": v for k, v in params.items()})
    for name, value in metrics.items():
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, int | float | str) and value is not None:
            value = json.dumps(value, default=str)
        row[f"metric.{name}"] = value
    return row


def write_row(settings: StorageSettings, row: Mapping[str, Any]) -> str:
    """Write ``row`` (scrubbed) as the trial's Parquet object; returns its ``s3://`` URI."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    clean = scrub(dict(row), settings.secrets())
    path = trial_path(settings, clean["sweep_id"], clean["trial_id"])
    table = pa.Table.from_pylist([clean])
    buf = io.BytesIO()
    pq.write_table(table, buf)
    fs = settings.pyarrow_fs()
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            # One PUT of the whole object: readers see the old row or the new one, never half.
            with fs.open_output_stream(path) as out:
                out.write(buf.getvalue())
            break
        except OSError as exc:
            if attempt == WRITE_ATTEMPTS:
                raise ResultsError(f"cannot write s3://{path} after {attempt} attempts (S3 endpoint "
                                   f"{settings.endpoint or 'aws'} unreachable or refusing): {exc}") from exc
            wait = min(2.0**attempt, 30.0)
            log.warning("S3 endpoint %s unreachable writing the row s3://%s (attempt %d of %d: %s); retrying in %.0f s",
                        settings.endpoint or "aws", path, attempt, WRITE_ATTEMPTS, exc, wait)
            time.sleep(wait)
    return f"s3://{path}"


def read_row(settings: StorageSettings, sweep_id: str, trial_id: str) -> dict[str, Any] | None:
    """The trial's stored row, or None when it has none yet."""
    import pyarrow.fs as pafs

    fs = settings.pyarrow_fs()
    path = trial_path(settings, sweep_id, trial_id)
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    return _read_object(fs, path).to_pylist()[0]


def _read_object(fs: Any, path: str):
    """One trial object as a table; :class:`ResultsError` naming the object when it is not readable Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with fs.open_input_file(path) as f:
            table = pq.read_table(f)
    except (pa.ArrowException, OSError) as exc:
        raise ResultsError(f"results object s3://{path} is corrupt or unreadable (not a Parquet row: {exc})") from exc
    if table.num_rows != 1:
        raise ResultsError(f"results object s3://{path} holds {table.num_rows} rows, expected one trial row")
    return table


def list_rows(settings: StorageSettings, sweep_id: str) -> list[str]:
    """Paths of the sweep's trial objects, sorted."""
    import pyarrow.fs as pafs

    fs = settings.pyarrow_fs()
    base = sweep_dir(settings, sweep_id)
    if fs.get_file_info(base).type == pafs.FileType.NotFound:
        return []
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=False))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet"))


def read_sweep(settings: StorageSettings, sweep_id: str, *, as_pandas: bool = False):
    """Every trial row of ``sweep_id`` as one ``pyarrow.Table`` (or pandas DataFrame).

    Rows are unified by column name (a column missing from one trial, e.g. metrics of a pruned
    trial, is null there) and sorted by trial id.
    """
    import pyarrow as pa

    fs = settings.pyarrow_fs()
    tables = [_read_object(fs, path) for path in list_rows(settings, sweep_id)]
    if not tables:
        table = pa.table({"sweep_id": pa.array([], pa.string()), "trial_id": pa.array([], pa.string())})
    else:
        table = pa.concat_tables(tables, promote_options="permissive").sort_by("trial_id")
    return table.to_pandas() if as_pandas else table
