"""Checkpoints: one self-describing file per run, written atomically, read with clear errors.

A checkpoint is a dict saved with ``torch.save``::

    {"format": "radae-checkpoint-v1", "config": cfg.to_dict(), "image_shape": (C, H, W),
     "model": state_dict, "optimizer": ..., "scheduler": ..., "rng": {...},
     "epoch": completed epochs, "best_val": float, ...}

:func:`save_checkpoint` writes a temporary file in the same folder, fsyncs it and renames it over
the target (``os.replace`` is atomic on POSIX), so a crash leaves either the old or the new file,
never half of one. :func:`load_checkpoint` raises :class:`CheckpointError` naming the file when it
is missing, truncated or corrupt, or not a radae checkpoint. :func:`load_model` rebuilds the model
from the stored config and loads its weights strictly.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from radae.config import ConfigError, RunConfig
from radae.models import Autoencoder, create_model

FORMAT = "radae-checkpoint-v1"
REQUIRED_KEYS = ("format", "config", "image_shape", "model")
# Fields added after checkpoints were first written whose default changed what a run does: a stored
# config without the field was trained with this value, and loading (evaluation, resuming) keeps it.
LEGACY_VALUES = {"data.resize": "pad"}  # before the paper's bilinear 28 -> 32 resize became the default


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (``format`` added if absent) to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, **state}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())

    write_atomic(path, write)
    # Make the rename itself durable.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    A failure (full disk, crash) leaves the previous file untouched and removes the temporary one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`write_atomic`)."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def corrupt(path: Path) -> CheckpointError:
    """The error for a file torch cannot read: what it is and what to do, not torch's internal exception."""
    return CheckpointError(
        f"checkpoint {path} is truncated or corrupt and cannot be read ({path.stat().st_size} bytes, not a "
        "complete torch checkpoint, e.g. a copy cut short). Use another copy, or retrain: a training run "
        "replaces its checkpoint.pt only with a complete one"
    )


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path`` (a file, or a run folder's ``checkpoint.pt``); :class:`CheckpointError`
    for missing, corrupt or foreign files."""
    path = Path(path)
    if path.is_dir():
        inside = path / "checkpoint.pt"
        if not inside.is_file():
            raise CheckpointError(
                f"{path} is a folder without checkpoint.pt: give a checkpoint file or a training run's output folder"
            )
        path = inside  # a run folder: its checkpoint
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        blocked = re.search(r"GLOBAL (\S+)", str(err))
        if blocked:
            # weights_only=True: objects other than tensors and plain containers are never built.
            raise CheckpointError(
                f"checkpoint {path} refused: it holds objects other than tensors and plain containers "
                f"(a crafted or foreign pickle; it would call {blocked.group(1)}), which the loader "
                "(torch.load(weights_only=True)) never builds"
            ) from err
        raise corrupt(path) from err
    except Exception as err:  # torch raises many types (IndexError, EOFError, ...) for truncated or garbage files
        raise corrupt(path) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a radae checkpoint (expected format {FORMAT!r}, found {found!r})")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    return state


def config_of(state: dict[str, Any], path: str | os.PathLike[str] = "checkpoint") -> RunConfig:
    """The :class:`RunConfig` stored in a loaded checkpoint (:data:`LEGACY_VALUES` for fields it predates)."""
    stored = state["config"]
    if isinstance(stored, dict):
        stored = {section: dict(values) if isinstance(values, dict) else values for section, values in stored.items()}
        for key, value in LEGACY_VALUES.items():
            section, name = key.split(".")
            if isinstance(stored.get(section), dict):
                stored[section].setdefault(name, value)
    try:
        return RunConfig.from_dict(stored)
    except ConfigError as err:
        raise CheckpointError(f"checkpoint {path} holds an invalid config: {err}") from err


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[RunConfig, Autoencoder]:
    """(config, model in eval mode on ``device``) rebuilt from the checkpoint at ``path``."""
    state = load_checkpoint(path, map_location="cpu")
    cfg = config_of(state, path)
    model = create_model(cfg, tuple(state["image_shape"]))
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not match the model its config describes: {err}") from err
    return cfg, model.to(device).eval()
