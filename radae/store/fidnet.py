"""One FID feature network per sweep and dataset: built by the driver, stored with the results, fetched by every trial.

Without this, each machine trains its own classifier feature network on first use
(:func:`radae.fid.classifier_feature_space`), and trials of one sweep on different nodes would score
``fid_classifier`` in different feature spaces. Instead :func:`publish_feature_nets` (the driver,
before any trial starts) builds the network of each dataset the sweep trains on and stores it as::

    s3://BUCKET/PREFIX/fid/sweep=<sweep_id>/<dataset>/feature_net.pt
    s3://BUCKET/PREFIX/fid/sweep=<sweep_id>/<dataset>/feature_net.pt.sha256

A network already stored (a ``--resume``d sweep, a restarted driver) is reused, never rebuilt.
Every trial fetches it (:func:`fetch_feature_net`) into a local cache keyed by its checksum
(``<feature cache>/sweeps/<sha256>.pt``), checks it (:func:`radae.fid.checked_feature_space`:
missing, corrupt or another network raises :class:`radae.fid.FIDError`) and evaluates with it; its
sha256 is the column ``fid_network_sha256`` of every row (tag ``radae.fid_network_sha256``).

The network is built from the base config (with each searched ``data.name`` value): its data
settings and ``eval.feature_epochs``, ``eval.seed``, ``eval.feature_cache``. A sweep without FID,
or scoring ``fid_inception`` (``eval.inception_weights``), stores none (the column is null).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from radae import fid
from radae.checkpoint import write_atomic
from radae.config import apply_overrides
from radae.data import load_dataset
from radae.evaluate import classifier_space
from radae.store.results import check_id
from radae.store.settings import StorageSettings

log = logging.getLogger(__name__)
FILE = "feature_net.pt"
COLUMN = "fid_network_sha256"


def object_key(settings: StorageSettings, sweep_id: str, dataset: str) -> str:
    """``bucket/prefix/fid/sweep=<id>/<dataset>/feature_net.pt`` (pyarrow path, no scheme)."""
    return settings.key(
        "fid", f"sweep={check_id('sweep id', sweep_id)}", check_id("dataset", dataset), FILE, with_bucket=True
    )


def sweep_datasets(space: Any, base: Any) -> list[str]:
    """Datasets the sweep trains on: the base config's, or the searched ``data.name`` values."""
    spec = space.params.get("data.name")
    return sorted({str(v) for v in spec.values}) if spec is not None else [base.data.name]


def needs_network(cfg: Any) -> bool:
    """Whether trials of ``cfg`` score FID with the classifier feature network."""
    return bool(cfg.eval.fid) and not cfg.eval.inception_weights


def _read(fs: Any, path: str) -> bytes | None:
    import pyarrow.fs as pafs

    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as f:
        return f.read()


def _write(fs: Any, path: str, data: bytes) -> None:
    with fs.open_output_stream(path) as out:
        out.write(data)


def publish_feature_nets(settings: StorageSettings, sweep_id: str, space: Any, base: Any) -> dict[str, dict[str, str]]:
    """Driver: ``{dataset: {"key", "sha256"}}`` of the sweep's stored networks, building the missing ones.

    ``space``: the sweep's :class:`radae.sweep.space.SearchSpace`; ``base``: its base RunConfig
    (overrides included). Returns ``{}`` when trials need no classifier network.
    """
    if not needs_network(base):
        return {}
    fs = settings.pyarrow_fs()
    out = {}
    for dataset in sweep_datasets(space, base):
        key = object_key(settings, sweep_id, dataset)
        stored = _read(fs, key + ".sha256")
        if stored is not None:
            sha = stored.decode().strip()
            log.info("FID feature network of %s: reusing s3://%s (sha256 %s)", dataset, key, sha)
        else:
            sha = _build_and_store(fs, key, apply_overrides(base, {"data.name": dataset}))
        out[dataset] = {"key": key, "sha256": sha}
    return out


def _build_and_store(fs: Any, key: str, cfg: Any) -> str:
    """Train (or take from this machine's cache) the dataset's network; upload it, then its checksum."""
    data = load_dataset(cfg.data, "cpu")
    path = Path(classifier_space(data, cfg.eval, log=log.info).weights_path)
    sha = fid.file_sha256(path)
    _write(fs, key, path.read_bytes())
    _write(fs, key + ".sha256", (sha + "\n").encode())  # last: a network without it is rebuilt
    log.info("FID feature network of %s: stored s3://%s (sha256 %s)", cfg.data.name, key, sha)
    return sha


def fetch_feature_net(network: dict[str, Any] | None, cache_dir: str | os.PathLike[str] | None = None):
    """Trial: the sweep's checked :class:`radae.fid.FeatureSpace` (None when ``network`` is None).

    ``network``: ``{"key", "sha256", "storage"}`` (:meth:`radae.sweep.trial.SweepContext.fid_network`).
    Downloads into ``<cache>/sweeps/<sha256>.pt`` unless a file with that checksum is there.
    """
    if not network:
        return None
    sha = network["sha256"]
    folder = Path(cache_dir) if cache_dir is not None else fid.feature_cache_dir() / "sweeps"
    path = folder / f"{sha}.pt"
    if path.is_file() and fid.file_sha256(path) == sha:
        return fid.checked_feature_space(path, sha)
    settings = StorageSettings.from_env(**network["storage"])
    data = _read(settings.pyarrow_fs(), network["key"])
    if data is None:
        raise fid.FIDError(f"the sweep's FID feature network s3://{network['key']} does not exist")
    folder.mkdir(parents=True, exist_ok=True)

    checked = []

    def write_checked(tmp: Path) -> None:  # checked before it takes the cache's name
        tmp.write_bytes(data)
        checked.append(fid.checked_feature_space(tmp, sha))

    try:
        write_atomic(path, write_checked)
    except fid.FIDError as err:
        raise fid.FIDError(f"the sweep's FID feature network s3://{network['key']} fails its check: {err}") from None
    space = checked[0]
    return type(space)(space.metric, space.extractor, space.layer, str(path))


def fid_columns(network: dict[str, Any] | None) -> dict[str, Any]:
    """Row column naming the feature network a trial scored FID with (null without one)."""
    return {COLUMN: network["sha256"] if network else None}


def fid_tags(network: dict[str, Any] | None) -> dict[str, Any]:
    """MLflow tag of :func:`fid_columns` (none without a network)."""
    return {f"radae.{COLUMN}": network["sha256"]} if network else {}
