"""One Parquet object per trial in S3-compatible storage, partitioned by sweep; read a sweep back.

Layout (hive-style, so Spark/DuckDB/pyarrow datasets see a ``sweep`` partition column)::

    s3://BUCKET/PREFIX/results/sweep=<sweep_id>/trial=<trial_id>.parquet
    s3://BUCKET/PREFIX/images/sweep=<sweep_id>/trial=<trial_id>.parquet    (per-image values, many rows)

The per-image objects (:func:`write_images`, :func:`read_images`; columns in :mod:`radae.store.images`)
live under their own ``images/`` prefix, so a dataset read of ``results/`` and :func:`read_sweep` see
only the one-row trial objects, as before.

The key is a pure function of (sweep, trial), and a trial's row is written with one PUT that
replaces any earlier object, so a retried, restored or repeated sweep overwrites its rows: it
never duplicates or loses one. Every row is passed through :func:`radae.store.settings.scrub`.
Reads and writes retry with backoff while the S3 endpoint is away, naming it (:mod:`radae.store.retry`).

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
import re
from collections.abc import Mapping
from typing import Any

from radae.store.retry import DEFAULT_POLICY, RetryPolicy
from radae.store.s3fs import s3_call
from radae.store.settings import S3_OWN_ATTEMPTS, StorageSettings, scrub

_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


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


def images_dir(settings: StorageSettings, sweep_id: str) -> str:
    """``bucket/prefix/images/sweep=<id>``: where the sweep's per-image objects live."""
    return settings.key("images", f"sweep={check_id('sweep id', sweep_id)}", with_bucket=True)


def images_path(settings: StorageSettings, sweep_id: str, trial_id: str) -> str:
    """Deterministic object path of one trial's per-image table."""
    return f"{images_dir(settings, sweep_id)}/trial={check_id('trial id', trial_id)}.parquet"


def put_parquet(settings: StorageSettings, path: str, records: list[dict[str, Any]], policy: RetryPolicy) -> str:
    """``records`` as one Parquet object at ``path`` in one PUT, retried (:func:`radae.store.s3fs.s3_call`);
    readers see the old object or the new one, never half. Returns its ``s3://`` URI."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), buf)
    fs = settings.pyarrow_fs(S3_OWN_ATTEMPTS)

    def put() -> None:
        with fs.open_output_stream(path) as out:
            out.write(buf.getvalue())

    s3_call(settings, f"writing s3://{path}", put, error=ResultsError, policy=policy)
    return f"s3://{path}"


def write_images(
    settings: StorageSettings,
    sweep_id: str,
    trial_id: str,
    records: list[dict[str, Any]],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> str:
    """Write one trial's per-image rows as one Parquet object (one PUT, replacing an earlier one; retried
    like :func:`write_row`); returns its ``s3://`` URI."""
    return put_parquet(settings, images_path(settings, sweep_id, trial_id), records, policy)


def read_images(
    settings: StorageSettings, sweep_id: str, *, as_pandas: bool = False, policy: RetryPolicy = DEFAULT_POLICY
):
    """Every per-image row of ``sweep_id`` as one table (empty when the sweep stored none, e.g. an older sweep)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = settings.pyarrow_fs(S3_OWN_ATTEMPTS)
    tables = []
    for path in list_parquet(settings, images_dir(settings, sweep_id), policy):
        data = s3_call(
            settings, f"reading s3://{path}", lambda p=path: _fetch(fs, p), error=ResultsError, policy=policy
        )
        try:
            tables.append(pq.read_table(pa.BufferReader(data)))
        except (pa.ArrowException, OSError) as exc:
            raise ResultsError(f"per-image object s3://{path} is corrupt or unreadable ({exc})") from exc
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    return table.to_pandas() if as_pandas else table


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


def write_row(settings: StorageSettings, row: Mapping[str, Any], *, policy: RetryPolicy = DEFAULT_POLICY) -> str:
    """Write ``row`` (scrubbed) as the trial's Parquet object; returns its ``s3://`` URI.

    While the S3 endpoint is away the PUT is retried with backoff (``policy``), each failed attempt
    and the recovery logged (:func:`radae.store.s3fs.s3_call`); :class:`ResultsError` naming the
    endpoint and the object once it gives up. The same key each time: a retry never duplicates the row.
    """
    clean = scrub(dict(row), settings.secrets())
    return put_parquet(settings, trial_path(settings, clean["sweep_id"], clean["trial_id"]), [clean], policy)


def read_row(
    settings: StorageSettings, sweep_id: str, trial_id: str, *, policy: RetryPolicy = DEFAULT_POLICY
) -> dict[str, Any] | None:
    """The trial's stored row, or None when it has none yet (retried like :func:`write_row`)."""
    import pyarrow.fs as pafs

    fs = settings.pyarrow_fs(S3_OWN_ATTEMPTS)
    path = trial_path(settings, sweep_id, trial_id)

    def get() -> bytes | None:
        if fs.get_file_info(path).type != pafs.FileType.File:
            return None
        return _fetch(fs, path)

    data = s3_call(settings, f"reading s3://{path}", get, error=ResultsError, policy=policy)
    return None if data is None else _parse(path, data).to_pylist()[0]


def _fetch(fs: Any, path: str) -> bytes:
    with fs.open_input_stream(path) as f:
        return f.read()


def _parse(path: str, data: bytes):
    """One trial object as a table; :class:`ResultsError` naming the object when it is not readable Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise ResultsError(f"results object s3://{path} is corrupt or unreadable (not a Parquet row: {exc})") from exc
    if table.num_rows != 1:
        raise ResultsError(f"results object s3://{path} holds {table.num_rows} rows, expected one trial row")
    return table


def list_rows(settings: StorageSettings, sweep_id: str, *, policy: RetryPolicy = DEFAULT_POLICY) -> list[str]:
    """Paths of the sweep's trial objects, sorted (retried like :func:`write_row`)."""
    return list_parquet(settings, sweep_dir(settings, sweep_id), policy)


def list_parquet(settings: StorageSettings, base: str, policy: RetryPolicy = DEFAULT_POLICY) -> list[str]:
    """Paths of the Parquet objects directly under ``base`` (pyarrow path), sorted; none when it does not exist.
    Retried like :func:`write_row`."""
    import pyarrow.fs as pafs

    fs = settings.pyarrow_fs(S3_OWN_ATTEMPTS)

    def ls() -> list[str]:
        if fs.get_file_info(base).type == pafs.FileType.NotFound:
            return []
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=False))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet"))

    return s3_call(settings, f"listing s3://{base}/", ls, error=ResultsError, policy=policy)


def read_sweep(
    settings: StorageSettings, sweep_id: str, *, as_pandas: bool = False, policy: RetryPolicy = DEFAULT_POLICY
):
    """Every trial row of ``sweep_id`` as one ``pyarrow.Table`` (or pandas DataFrame).

    Rows are unified by column name (a column missing from one trial, e.g. metrics of a pruned
    trial, is null there) and sorted by trial id. An object that is not a one-row Parquet file
    raises :class:`ResultsError` naming it (nothing is skipped silently).
    """
    import pyarrow as pa

    fs = settings.pyarrow_fs(S3_OWN_ATTEMPTS)
    tables = []
    for path in list_rows(settings, sweep_id, policy=policy):
        data = s3_call(
            settings, f"reading s3://{path}", lambda p=path: _fetch(fs, p), error=ResultsError, policy=policy
        )
        tables.append(_parse(path, data))
    if not tables:
        table = pa.table({"sweep_id": pa.array([], pa.string()), "trial_id": pa.array([], pa.string())})
    else:
        table = pa.concat_tables(tables, promote_options="permissive").sort_by("trial_id")
    return table.to_pandas() if as_pandas else table
