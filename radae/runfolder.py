"""A run's output folder (``train.out_dir``): its files, their atomic writes and the epoch history.

:func:`radae.trainer.train` (one run) and :func:`radae.fast.packed_train.train_packed` (one folder
per member of a pack) write the same folder through :class:`RunFolder`::

    folder = RunFolder(cfg.train.out_dir)
    state = folder.check(cfg, resume)      # checkpoint to resume (or None); refuses another run's folder
    folder.start(cfg, state)               # config.json; history and metrics.jsonl from the checkpoint
    folder.save_epoch(metrics, ckpt)       # per epoch: history += metrics, checkpoint.pt, metrics.jsonl
    folder.write_summary(summary)          # summary.json (figures: folder.path("samples.png"))

Files: ``config.json`` (the resolved :class:`~radae.config.RunConfig`), ``checkpoint.pt``
(:mod:`radae.checkpoint`'s format, with ``epoch`` and ``history``), ``metrics.jsonl`` (one JSON
line per epoch), ``summary.json``, figures. Every write goes to a temporary file renamed over the
target (:func:`radae.checkpoint.write_text_atomic`, :func:`radae.checkpoint.save_checkpoint`), so a
crash leaves the old or the new file, never half of one. The checkpoint is written before
``metrics.jsonl``, and ``metrics.jsonl`` is rewritten from the history, so it always mirrors the
last checkpoint's history after a resume (no missing or duplicated line).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radae.checkpoint import CheckpointError, config_of, load_checkpoint, save_checkpoint, write_text_atomic
from radae.config import RunConfig

# Fields that may change between an interrupted run and its resumption (train longer, move the
# data, change device); every other field must match the checkpoint's config.
RESUMABLE_CHANGES = frozenset({"train.epochs", "train.device", "data.data_dir", "data.download"})
# The folder's own files, in the order summary.json lists them (figures follow).
FILES = ("checkpoint.pt", "metrics.jsonl", "summary.json", "config.json")


class RunFolderError(ValueError):
    """The output folder cannot be used for this run (another run's checkpoint, nothing to resume)."""


@dataclass
class TrainResult:
    """What a training run produced: the folder, the checkpoint, the summary and per-epoch metrics."""

    out_dir: Path
    checkpoint: Path
    summary: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def differing_fields(a: RunConfig, b: RunConfig, ignore: frozenset[str] = RESUMABLE_CHANGES) -> list[str]:
    """Dotted keys whose values differ between two configs (except ``ignore``)."""
    fa, fb = a.flat(), b.flat()
    return [k for k in fa if k not in ignore and fa[k] != fb.get(k)]


class RunFolder:
    """One run's output folder: paths of its files, atomic writes, and the history of epoch metrics."""

    def __init__(self, out_dir: str | os.PathLike[str]):
        self.root = Path(out_dir)
        self.history: list[dict[str, Any]] = []

    def path(self, name: str) -> Path:
        """The path of file ``name`` (one of :data:`FILES` or a figure) in this folder."""
        return self.root / name

    @property
    def checkpoint(self) -> Path:
        return self.path("checkpoint.pt")

    def paths(self) -> dict[str, Path]:
        """``{file name: path}`` of the folder's own files (:data:`FILES`)."""
        return {name: self.path(name) for name in FILES}

    def check(self, cfg: RunConfig, resume: bool) -> dict[str, Any] | None:
        """The checkpoint to resume from (or None for a fresh run); refuses to overwrite any run."""
        out, ckpt = self.root, self.checkpoint
        if not ckpt.exists():
            if resume:
                raise RunFolderError(f"nothing to resume: {ckpt} does not exist (train.out_dir={out})")
            return None
        try:
            state = load_checkpoint(ckpt)
        except CheckpointError as err:
            raise RunFolderError(
                f"output folder {out} holds an unusable checkpoint; choose another out_dir. {err}"
            ) from err
        stored = config_of(state, ckpt)
        diff = differing_fields(stored, cfg)
        if diff:
            shown = ", ".join(f"{k}={stored.flat()[k]!r} (now {cfg.flat()[k]!r})" for k in diff[:5])
            raise RunFolderError(
                f"output folder {out} holds another run's checkpoint (its config differs in {shown}); "
                "choose another out_dir (--out-dir) or remove that folder"
            )
        if not resume:
            raise RunFolderError(
                f"output folder {out} already holds this run's checkpoint (epoch {state.get('epoch')}); "
                "pass --resume to continue it or choose another out_dir (--out-dir)"
            )
        return state

    def start(self, cfg: RunConfig, state: dict[str, Any] | None = None) -> None:
        """Create the folder, write ``config.json``, take the history of ``state`` (the resumed checkpoint)."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path("config.json"), json.dumps(cfg.to_dict(), indent=2) + "\n")
        self.history = list(state.get("history", [])) if state is not None else []
        self._write_metrics()

    def save_epoch(self, metrics: dict[str, Any], checkpoint: dict[str, Any]) -> None:
        """Append ``metrics`` to the history; write ``checkpoint.pt`` (``checkpoint`` plus ``epoch`` and
        ``history``), then ``metrics.jsonl``."""
        self.history.append(metrics)
        save_checkpoint(self.checkpoint, {**checkpoint, "epoch": metrics["epoch"], "history": self.history})
        self._write_metrics()

    def write_summary(self, summary: dict[str, Any]) -> Path:
        return write_text_atomic(self.path("summary.json"), json.dumps(summary, indent=2) + "\n")

    def result(self, summary: dict[str, Any]) -> TrainResult:
        return TrainResult(out_dir=self.root, checkpoint=self.checkpoint, summary=summary, history=self.history)

    def _write_metrics(self) -> None:
        write_text_atomic(self.path("metrics.jsonl"), "".join(json.dumps(m) + "\n" for m in self.history))
