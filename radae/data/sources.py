"""Finding a dataset's files and turning them into :class:`Splits` (see :mod:`radae.data`).

A folder the user names (``data.data_dir``, ``--data-dir``) is the only one tried: when it is
missing, empty or lacks a file, :class:`DataError` names it before any work (falling back to
another copy would train on data the user did not choose). Without one, locations are tried in a
fixed order and the first one holding every raw file wins; a file that is there but unreadable
stops the search with an error naming it (silently falling back to another copy would hide the
problem). When no location works, the :class:`DataError` lists each one tried and why it failed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from radae.config import DataConfig
from radae.data.base import DataError, DatasetSource, RawData, Split, Splits, get_source

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0  # the no-network case must fail in seconds, not hang
DOWNLOAD_TIMEOUT_S = 60.0  # per socket operation during a download


def cache_dir() -> Path:
    """Where downloads go: ``$XDG_CACHE_HOME/radae/data`` (default ``~/.cache/radae/data``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "radae" / "data"


def search_roots(source: DatasetSource, cfg: DataConfig) -> list[tuple[str, Path]]:
    """(label, folder) of every base folder tried, in order, before any download: only
    ``data.data_dir`` when it is set (a folder the user named is never replaced by another)."""
    if cfg.data_dir:
        return [("data.data_dir", Path(cfg.data_dir).expanduser())]
    roots: list[tuple[str, Path]] = []
    if os.environ.get("RADAE_DATA_DIR"):
        roots.append(("$RADAE_DATA_DIR", Path(os.environ["RADAE_DATA_DIR"]).expanduser()))
    roots += [("system copy", folder) for folder in source.system_dirs]
    roots.append(("download cache", cache_dir()))
    return roots


def _find_in(source: DatasetSource, root: Path) -> tuple[Path, dict[str, Path] | None, str]:
    """The first layout folder under ``root`` holding every file, or None and why not."""
    if not root.is_dir():
        return root, None, "no such folder"
    if not any(root.iterdir()):
        return root, None, "the folder is empty"
    candidates = [root / sub if sub else root for sub in source.folders]
    for folder in candidates:
        files = source.find(folder)
        if files is not None:
            return folder, files, ""
    where = ", ".join(str(c) for c in candidates)
    return root, None, f"none of {where} holds {source.describe()}"


def probe_network(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when ``url``'s host accepts a TCP connection within ``timeout`` s, else the reason.

    Runs in a thread because name resolution ignores socket timeouts and can hang offline.
    """
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
            result.append(None)
        except OSError as err:
            result.append(f"{parsed.hostname}:{port} unreachable ({err})")

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else f"{parsed.hostname}:{port} gave no answer in {timeout:.0f} s"


def _download(source: DatasetSource, root: Path) -> str | None:
    """Download with torchvision into ``root``; None on success, else why it failed."""
    problem = probe_network(source.download_url)
    if problem:
        return f"no network: {problem}"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torchvision's urlopen sets none
    try:
        root.mkdir(parents=True, exist_ok=True)
        source.download(root)
    except Exception as err:  # any failure of a third-party download is reported, not raised
        return f"failed: {type(err).__name__}: {err}"
    finally:
        socket.setdefaulttimeout(previous)
    return None


def explicit_folder_error(source: DatasetSource, root: Path, why: str) -> DataError:
    """The error for a ``data.data_dir`` that does not hold the dataset (no fallback is tried)."""
    return DataError(
        f"--data-dir (data.data_dir) {root}: {why}; it must hold the {source.info.name} raw files "
        f"({source.describe()}; docs/data.md lists the accepted layouts). A folder you name is the only one "
        "used: fix the path, or leave --data-dir out to search $RADAE_DATA_DIR, the system copies and the "
        "download cache"
    )


def locate(source: DatasetSource, cfg: DataConfig) -> tuple[Path, dict[str, Path]]:
    """The folder and files of the first location holding the dataset; DataError listing all tried
    (only ``data.data_dir`` when it is set: :func:`explicit_folder_error` when it lacks the files)."""
    if cfg.data_dir:
        folder, files, why = _find_in(source, Path(cfg.data_dir).expanduser())
        if files is None:
            raise explicit_folder_error(source, Path(cfg.data_dir).expanduser(), why)
        return folder, files
    tried = []
    for label, root in search_roots(source, cfg):
        folder, files, why = _find_in(source, root)
        if files is not None:
            return folder, files
        tried.append(f"{label} {root}: {why}")
    if cfg.download:
        problem = _download(source, cache_dir())
        if problem is None:
            folder, files, why = _find_in(source, cache_dir())
            if files is not None:
                return folder, files
            problem = f"finished but {why}"
        tried.append(f"torchvision download into {cache_dir()}: {problem}")
    else:
        tried.append("torchvision download: skipped (data.download is false)")
    listing = "\n".join(f"  {i}. {line}" for i, line in enumerate(tried, 1))
    raise DataError(
        f"no {source.info.name} data found. Tried, in order:\n{listing}\n"
        f"Put the raw files ({source.describe()}) in a folder and pass it as --data-dir (data.data_dir) or set "
        "RADAE_DATA_DIR to it (docs/data.md lists the accepted layouts)."
    )


def resolve_folder(cfg: DataConfig) -> str | None:
    """The folder dataset ``cfg.name`` will be read from, found without downloading or reading it
    (a sweep driver pins it before any trial, so each row records the copy its trial read).

    ``data.data_dir`` when it holds the files (else :class:`DataError` naming it); without one, the
    first location of the search order holding them; None when only a download would find them.
    """
    source = get_source(cfg.name)
    if cfg.data_dir:
        return str(locate(source, cfg)[0])
    for _, root in search_roots(source, cfg):
        folder, files, _ = _find_in(source, root)
        if files is not None:
            return str(folder)
    return None


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def split_raw(raw: RawData, cfg: DataConfig, name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train / val / test arrays: the official validation set, else the last ``val_size``
    training images; then only the first ``train_limit`` training images are kept."""
    train = (raw.train_images, raw.train_labels)
    if raw.val_images is not None and raw.val_labels is not None:
        val = (raw.val_images, raw.val_labels)
    else:
        n = len(raw.train_images)
        if cfg.val_size >= n:
            raise DataError(f"data.val_size ({cfg.val_size}) must be smaller than the {n} {name} training images")
        val = (raw.train_images[n - cfg.val_size :], raw.train_labels[n - cfg.val_size :])
        train = (raw.train_images[: n - cfg.val_size], raw.train_labels[: n - cfg.val_size])
    if cfg.train_limit is not None:
        train = (train[0][: cfg.train_limit], train[1][: cfg.train_limit])
    return {"train": train, "val": val, "test": (raw.test_images, raw.test_labels)}


def load_dataset(cfg: DataConfig, device: torch.device | str | None = None) -> Splits:
    """Find, read and check dataset ``cfg.name`` once, and return its splits on ``device``.

    Raises :class:`DataError` for an unknown name, when no location holds the files (listing
    every location tried) or when a file is unreadable or truncated (naming the file).
    """
    source = get_source(cfg.name)
    folder, files = locate(source, cfg)
    log.info("loading %s from %s", cfg.name, folder)
    parts = split_raw(source.prepare(source.read(files), cfg.resize), cfg, cfg.name)
    splits = {key: Split(_tensor(images), _tensor(labels)) for key, (images, labels) in parts.items()}
    for key, split in splits.items():
        if split.images.shape[1:] != source.info.image_shape:
            raise DataError(
                f"{cfg.name} {key} images from {folder} have shape {tuple(split.images.shape[1:])}, "
                f"expected {source.info.image_shape}"
            )
    return Splits(splits["train"], splits["val"], splits["test"], source.info, str(folder)).to(device)
