"""One sweep trial's parts: its typed settings, how it talks to Ray, checkpoint restore, train and evaluate.

- :class:`SweepContext`: what every trial of a sweep shares (picklable, no secret); :class:`Member`:
  one configuration a trial trains; :class:`TrialJob`: one Tune trial's work order (its members and
  its shape, single or packed: :mod:`radae.sweep.shapes`).
- Reporters (registry :data:`REPORTERS`): ``tune`` inside a Tune function, ``train`` inside a Ray
  Train worker.
- :func:`restore_checkpoint`: a checkpoint from Ray storage enters the trial's folder only once
  :func:`radae.checkpoint.load_checkpoint` (``weights_only=True``) accepts it.
- :func:`train_and_evaluate`: train, load each checkpoint, evaluate, build the final metrics
  (:data:`FINAL_METRICS` plus the evaluation's and the objective's); single trials, every member of
  a packed trial and ``sweeps/baselines.py`` all call it. :func:`trial_row` makes their Parquet rows.
"""

from __future__ import annotations

import errno
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radae.checkpoint import CheckpointError, load_checkpoint, load_model, write_atomic, write_text_atomic
from radae.config import RunConfig
from radae.evaluate import evaluate
from radae.objective import FINAL_KEY, Objective, level_tag
from radae.registry import Registry
from radae.store.results import make_row
from radae.store.settings import StorageSettings

REPORTERS: Registry = Registry("reporter")
CHECKPOINT_FILE = "checkpoint.pt"
# Files of radae.train's output folder logged as MLflow artifacts of a trial's run.
TRAIN_ARTIFACTS = ("samples.png", "reconstructions.png", "summary.json", "config.json", "metrics.jsonl")
# Final-report entries that are Unix times of the training (row columns, not metrics).
TRAIN_TIMES = ("train_started_at", "train_finished_at")
# Every evaluated configuration's final metrics hold these, besides its evaluation metrics and the
# objective's (robustness, fid, score); Lipschitz-bounded models add certified_maxdmg_l2_recx_recxa_l<lambda>.
FINAL_METRICS = (
    "epochs_trained",
    "train_seconds",
    "eval_seconds",
    *TRAIN_TIMES,
    "resumed_from_epoch",
    "startup_seconds",
    "data_seconds",
    FINAL_KEY,
)


@dataclass(frozen=True)
class SweepContext:
    """Everything a trial needs besides its sampled params (picklable; holds no secret)."""

    sweep_id: str
    base: RunConfig  # RunConfig() + the definition's base + --set (SweepDefinition.base_config)
    space: dict[str, Any]
    objective: str
    fid_weight: float
    storage: dict[str, Any]
    tracking_uri: str
    experiment: str
    parent_run_id: str
    work_dir: str
    executor: str = "torch"
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    state_dir: str | None = None
    threads: int = 1
    gpus_per_trial: float = 1.0
    pack_noise: str = "member"  # a pack's noise streams (radae.fast.PackConfig.noise)
    # dataset name -> the sweep's stored FID feature network ({"key", "sha256"}, radae.store.fidnet)
    fid_networks: dict[str, Any] = field(default_factory=dict)
    smoke_test: bool = False  # --smoke-test: every row says so (the report shows a banner)

    def settings(self) -> StorageSettings:
        """Storage settings with the credentials of this process's environment."""
        return StorageSettings.from_env(**self.storage)

    def fid_network(self, dataset: str) -> dict[str, Any] | None:
        """Where a trial on ``dataset`` fetches the sweep's FID feature network (None: it needs none)."""
        net = self.fid_networks.get(dataset)
        return {**net, "storage": self.storage} if net else None


@dataclass(frozen=True)
class Member:
    """One configuration a Tune trial trains: its row id, config, sampled params, seed columns, MLflow run."""

    trial_id: str
    cfg: RunConfig
    params: dict[str, Any]
    columns: dict[str, Any]
    run_id: str | None = None


@dataclass(frozen=True)
class TrialJob:
    """One Tune trial's work order, from the Tune function to the executor's worker loop."""

    ctx: SweepContext
    trial_id: str  # the Tune trial id (a single trial's row id; a pack's members are <id>-m<k>)
    shape: str  # "single" or "packed" (radae.sweep.shapes.SHAPES)
    members: tuple[Member, ...]
    started: float  # when the Tune function started (startup_seconds)
    reporter: str = "tune"

    @property
    def fid_network(self) -> dict[str, Any] | None:
        return self.ctx.fid_network(self.members[0].cfg.data.name)  # members share data.name (packable)


# ---- reporters: how a trial talks to Ray ---------------------------------------------------------
@REPORTERS.register("tune")
class TuneReporter:
    """Inside a Tune function (the ``direct`` executor)."""

    rank = 0

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        from ray import tune

        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(metrics, checkpoint=ckpt)

    def get_checkpoint(self):
        from ray import tune

        return tune.get_checkpoint()


@REPORTERS.register("train")
class TrainReporter:
    """Inside a Ray Train worker (the ``torch`` executor); rank 0 reports the checkpoint."""

    def __init__(self) -> None:
        import ray.train

        self.rank = ray.train.get_context().get_world_rank()

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        import ray.train

        ckpt = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir and self.rank == 0 else None
        ray.train.report(metrics, checkpoint=ckpt)

    def get_checkpoint(self):
        import ray.train

        return ray.train.get_checkpoint()


def report_with_checkpoint(reporter: Any, metrics: dict[str, Any], files: Mapping[str, Path]) -> None:
    """Report ``metrics`` with a Ray checkpoint holding ``files`` (name in the checkpoint -> local file or folder)."""
    with tempfile.TemporaryDirectory(prefix="radae-ckpt-") as tmp:
        for name, src in files.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            if Path(src).is_dir():
                shutil.copytree(src, Path(tmp) / name)
            elif Path(src).exists():
                shutil.copy2(src, Path(tmp) / name)
        reporter.report(metrics, tmp)


def numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The int and float entries of ``metrics`` as floats (what Ray and MLflow take as metrics)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def write_state(job: TrialJob, suffix: str, content: dict[str, Any]) -> None:
    """Write ``<state_dir>/<trial>.<suffix>`` (pids and progress, read by operators and fault tests)."""
    if not job.ctx.state_dir:
        return

    path = Path(job.ctx.state_dir) / f"{job.trial_id}.{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(content))


class DiskFullError(OSError):
    """The trial's work folder ran out of space; the message names the trial and the folder."""

    @classmethod
    def of(cls, exc: OSError, trial_id: str, out: str) -> OSError:
        """``exc`` as a DiskFullError naming the trial when it is ENOSPC; ``exc`` itself otherwise."""
        if exc.errno != errno.ENOSPC or isinstance(exc, DiskFullError):
            return exc
        return cls(
            errno.ENOSPC,
            f"trial {trial_id}: no space left on the device of its work folder {out} ({exc}); "
            "its last good checkpoint is kept there and in Ray storage: free space, then --resume continues from it",
        )


# ---- checkpoint restore --------------------------------------------------------------------------
def restore_checkpoint(src: Path, dest: Path, origin: str) -> int | None:
    """Copy a checkpoint restored from Ray storage to ``dest`` once the project's loader accepts it.

    ``src`` is read with :func:`radae.checkpoint.load_checkpoint` (``torch.load(weights_only=True)``):
    a file holding anything but tensors and plain containers, such as a crafted pickle written to
    the bucket, is refused with a :class:`~radae.checkpoint.CheckpointError` naming ``origin`` (its
    place in storage) before any code of it runs or any file of the trial changes. Returns the
    checkpoint's epoch, or None when ``src`` does not exist.
    """
    if not src.exists():
        return None
    try:
        state = load_checkpoint(src)
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint {origin} restored from Ray storage refused: {exc}") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Atomic: a full disk leaves the folder's previous checkpoint whole, never a truncated copy.
    write_atomic(dest, lambda tmp: shutil.copy2(src, tmp))
    return int(state.get("epoch", 0))


# ---- train, load, evaluate, final metrics --------------------------------------------------------
@dataclass(frozen=True)
class Startup:
    """What came before training: the final metrics' ``startup_seconds`` (Tune function start to the
    loop's start: the executor's overhead), ``data_seconds`` (loop start to training: restore, data,
    feature network) and ``resumed_from_epoch``."""

    startup_seconds: float = 0.0
    data_seconds: float = 0.0
    resumed_from_epoch: int = 0


@dataclass(frozen=True)
class Outcome:
    """One configuration's end: its final metrics once evaluated, else the error that stopped it; ``images``:
    its per-image values ``{name: {test index: value}}`` (:mod:`radae.store.images`, R per image included)."""

    final: dict[str, Any] | None
    error: str | None = None
    checkpoint: Path | None = None
    images: dict[str, dict[int, float]] | None = None


def train_and_evaluate(
    cfgs: Sequence[RunConfig],
    data: Any,
    objective: Objective,
    *,
    train: Callable[[], Sequence[Any]],
    device: Any = "cpu",
    feature_net: Any = None,
    startup: Startup = Startup(),
) -> list[Outcome]:
    """Train ``cfgs``, then evaluate each trained checkpoint; one :class:`Outcome` per config, in order.

    ``train()`` trains them all and returns one :class:`radae.runfolder.TrainResult` per config
    (:func:`radae.train.train` for one, :func:`radae.fast.train_packed` for a pack). A result whose
    summary status is not ``ok`` (a pack member that diverged) is not evaluated: its outcome is the
    error. ``feature_net``: the FID feature network (None: the evaluator's own).
    """
    t0 = time.time()
    trained = train()
    t1 = time.time()
    outcomes = []
    for cfg, result in zip(cfgs, trained, strict=True):
        if result.summary.get("status", "ok") != "ok":
            outcomes.append(Outcome(None, str(result.summary.get("error", "diverged"))))
            continue
        e0 = time.time()
        _, model = load_model(result.checkpoint, device=device)
        extra = {"feature_net": feature_net} if feature_net is not None else {}
        evaluation = evaluate(
            model, data, cfg.eval, device=device, out_dir=Path(cfg.train.out_dir) / "eval", progress=False, **extra
        )
        final = {
            **numeric(evaluation.metrics),
            **objective.derive(evaluation.metrics, cfg.eval.levels),
            **certified_bounds(model, cfg.eval.levels),
            # Not "epoch": ASHA's time attribute, which must not see the final report.
            "epochs_trained": float(len(result.history)),
            "train_seconds": t1 - t0,  # a pack's members trained together: the pack's time
            "eval_seconds": time.time() - e0,
            "train_started_at": t0,
            "train_finished_at": t1,
            "resumed_from_epoch": float(startup.resumed_from_epoch),
            "startup_seconds": startup.startup_seconds,
            "data_seconds": startup.data_seconds,
            FINAL_KEY: 1.0,
        }
        outcomes.append(Outcome(final, None, result.checkpoint, evaluation.images))
    return outcomes


def certified_bounds(model: Any, levels: Sequence[float]) -> dict[str, float]:
    """``certified_maxdmg_l2_recx_recxa_l<lambda>``: a Lipschitz-bounded model's certified bound on the
    max-damage L2 ||rec x - rec x_a|| at each attack radius lambda (none for other models)."""
    if not hasattr(model, "certified_bounds"):
        return {}
    return {
        f"certified_maxdmg_l2_recx_recxa_l{level_tag(lv)}": float(model.certified_bounds(lv)["reconstruction_l2_bound"])
        for lv in levels
    }


def split_times(final: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, timing columns) of a final report: :data:`TRAIN_TIMES` are Unix times, not metrics."""
    return {k: v for k, v in final.items() if k not in TRAIN_TIMES}, {k: final.get(k) for k in TRAIN_TIMES}


def log_trial_outputs(tracker: Any, run_id: str, final: Mapping[str, Any], checkpoint: Path, out: Path) -> None:
    """A trained and evaluated configuration's MLflow record: final metrics, checkpoint, evaluation, training files."""
    tracker.log_metrics(run_id, split_times(final)[0], step=int(final["epochs_trained"]))
    tracker.log_artifacts(run_id, checkpoint, "checkpoint")
    tracker.log_artifacts(run_id, out / "eval", "eval")
    for name in TRAIN_ARTIFACTS:
        tracker.log_artifacts(run_id, out / name, "train")


def trial_row(
    *,
    sweep_id: str,
    member: Member,
    final: Mapping[str, Any],
    started: float,
    executor: str,
    error: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Parquet row of one configuration (status completed, or error with ``error``); ``final``: its
    final metrics (empty when it never got any). Columns: :func:`radae.store.results.make_row`."""
    finished = time.time()
    metrics, train_times = split_times(final)
    return make_row(
        sweep_id=sweep_id,
        trial_id=member.trial_id,
        status="error" if error is not None else "completed",
        config=member.cfg.flat(),
        params=member.params,
        metrics=metrics,
        timings={
            "started_at": started,
            "finished_at": finished,
            "wall_seconds": finished - started,
            "train_seconds": final.get("train_seconds"),
            "eval_seconds": final.get("eval_seconds"),
            **train_times,
        },
        extra={
            "resumed_from_epoch": int(final.get("resumed_from_epoch", 0)),
            "executor": executor,
            **member.columns,
            **(extra or {}),
            **({} if error is None else {"error": error}),
        },
    )
