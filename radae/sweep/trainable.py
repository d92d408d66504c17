"""The Tune function trainable: one trial = train, checkpoint through Ray storage, evaluate, record.

:func:`run_trial` (the Tune trainable) builds the trial's RunConfig from the definition's base and
the sampled params (``SearchSpace.to_config``: dotted keys, unknown ones rejected), opens the
trial's nested MLflow run, runs :func:`worker_loop` through an executor and writes the trial's
Parquet row. Executors (registry :data:`EXECUTORS`):

- ``torch``: a Ray Train ``TorchTrainer`` (one worker, a GPU when the cluster has one) with
  ``TuneReportCallback``, run name ``<sweep>-<trial>``. Ray 2.60 (Train V2) cannot nest a trainer
  in a Tuner, so the Tune function builds it and calls ``fit()`` (stack.md). Costs ~12 s and
  ~3.4 GB RSS per trial.
- ``direct``: :func:`worker_loop` runs inside the Tune function itself (~3.5 s per trial).

:func:`worker_loop` resumes from the latest Ray checkpoint (a retried trial continues where the
killed one stopped: Train V2 restores its run by name; Tune hands the function its checkpoint),
calls :func:`radae.train.train` with an ``on_epoch`` that reports every epoch with the checkpoint
file, then :func:`radae.evaluate.evaluate`, and reports the final metrics (``evaluated`` = 1) with
a checkpoint (Train V2's ``Result.metrics`` stays None without one).

A trial whose row is already ``completed`` in the bucket reports the stored metrics and returns:
a restored sweep never repeats finished work.

Trials per GPU (:mod:`radae.sweep.packing`): the loop caps its CUDA memory at ``gpus_per_trial``;
a trial whose config is a pack (``{"pack": [...]}``, ``pack_size > 1``) runs
:mod:`radae.sweep.packed_trial` instead (``train_packed``, one row/run/evaluation per member).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from radae.registry import Registry
from radae.sweep.objective import FINAL_KEY, make_objective
from radae.sweep.settings import StorageSettings

EXECUTORS: Registry = Registry("executor")
REPORTERS: Registry = Registry("reporter")
CHECKPOINT_FILE = "checkpoint.pt"
# Files of radae.train's output folder logged as MLflow artifacts of a trial's run.
TRAIN_ARTIFACTS = ("samples.png", "reconstructions.png", "summary.json", "config.json", "metrics.jsonl")
# Final-report entries that are Unix times of the training (row columns, not metrics).
TRAIN_TIMES = ("train_started_at", "train_finished_at")


@dataclass(frozen=True)
class SweepContext:
    """Everything a trial needs besides its sampled params (picklable; holds no secret)."""

    sweep_id: str
    base: dict[str, Any]
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
    pack_size: int = 1
    pack_noise: str = "member"
    # dataset name -> the sweep's stored FID feature network ({"key", "sha256"}, radae.sweep.fidnet)
    fid_networks: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> StorageSettings:
        """Storage settings with the credentials of this process's environment."""
        return StorageSettings.from_env(**self.storage)

    def fid_network(self, dataset: str) -> dict[str, Any] | None:
        """Where a trial on ``dataset`` fetches the sweep's FID feature network (None: it needs none)."""
        net = self.fid_networks.get(dataset)
        return {**net, "storage": self.storage} if net else None


@dataclass
class TrialJob:
    """One trial's work order for :func:`worker_loop` (a plain dict on the wire)."""

    sweep_id: str
    trial_id: str
    cfg: dict[str, Any]
    run_id: str
    tracking_uri: str
    experiment: str
    objective: str
    fid_weight: float
    state_dir: str | None
    threads: int
    reporter: str = "tune"
    extra: dict[str, Any] = field(default_factory=dict)


# ---- reporters: how worker_loop talks to Ray --------------------------------------------------
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


def _numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _state_file(job: dict[str, Any], suffix: str, content: dict[str, Any]) -> None:
    """Write ``<state_dir>/<trial>.<suffix>`` (pids and progress, read by operators and fault tests)."""
    if not job.get("state_dir"):
        return
    path = Path(job["state_dir"]) / f"{job['trial_id']}.{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(content))
    os.replace(tmp, path)


def _report_with_checkpoint(reporter: Any, metrics: dict[str, Any], files: Mapping[str, Path]) -> None:
    with tempfile.TemporaryDirectory(prefix="radae-ckpt-") as tmp:
        for name, src in files.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            if Path(src).is_dir():
                shutil.copytree(src, Path(tmp) / name)
            elif Path(src).exists():
                shutil.copy2(src, Path(tmp) / name)
        reporter.report(metrics, tmp)


class DiskFullError(OSError):
    """The trial's work folder ran out of space; the message names the trial and the folder."""


def worker_loop(job: dict[str, Any]) -> dict[str, Any]:
    """:func:`train_and_evaluate`, with a full disk under the trial's work folder named (:class:`DiskFullError`).

    Checkpoints are written atomically (:func:`radae.checkpoint.save_checkpoint`), so the last good one
    survives in the folder and in Ray storage; the retried or resumed trial continues from it.
    """
    import errno

    try:
        return train_and_evaluate(job)
    except OSError as exc:
        if exc.errno != errno.ENOSPC or isinstance(exc, DiskFullError):
            raise
        out = job["cfg"]["train"]["out_dir"]
        raise DiskFullError(
            errno.ENOSPC, f"trial {job['trial_id']}: no space left on the device of its work folder {out} ({exc}); "
            "its last good checkpoint is kept there and in Ray storage: free space, then --resume continues from it"
        ) from exc


def train_and_evaluate(job: dict[str, Any]) -> dict[str, Any]:
    """Train (resuming from the latest Ray checkpoint), evaluate, report; returns the final metrics."""
    import torch

    from radae.checkpoint import load_checkpoint, load_model
    from radae.config import RunConfig, apply_overrides
    from radae.data import load_dataset
    from radae.evaluate import evaluate
    from radae.sweep.packing import cap_gpu_memory
    from radae.sweep.tracking import Tracker
    from radae.train import train
    from radae.trainer import resolve_device

    if job["extra"].get("members"):
        from radae.sweep.packed_trial import packed_loop

        return packed_loop(job)
    entered = time.time()
    torch.set_num_threads(int(job.get("threads", 1)))
    cap_gpu_memory(job["extra"].get("gpu_fraction"))
    reporter = REPORTERS.create(job["reporter"])
    cfg = RunConfig.from_dict(job["cfg"])
    if reporter.rank > 0:
        # radae.train is single-process: extra workers train their own copy in their own folder
        # (until the trainer supports DDP) and never report checkpoints or log to MLflow.
        cfg = apply_overrides(cfg, {"train.out_dir": f"{cfg.train.out_dir}/rank{reporter.rank}"})
    out = Path(cfg.train.out_dir)
    _state_file(job, "pid", {"pid": os.getpid(), "rank": reporter.rank, "time": time.time()})

    resumed_from = 0
    restored = reporter.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as ckpt_dir:
            take_restored(Path(ckpt_dir) / CHECKPOINT_FILE, out / CHECKPOINT_FILE, f"{restored.path}/{CHECKPOINT_FILE}")
    if (out / CHECKPOINT_FILE).exists():
        resumed_from = int(load_checkpoint(out / CHECKPOINT_FILE).get("epoch", 0))

    tracker = Tracker(job["tracking_uri"], job["experiment"]) if reporter.rank == 0 else None
    device = resolve_device(cfg.train.device)
    data = load_dataset(cfg.data, device)
    fid_kwargs = feature_net_kwargs(job)  # fetched and checked before training: a bad network fails now

    def on_epoch(metrics: dict[str, Any], checkpoint_path: str) -> None:
        _report_with_checkpoint(reporter, _numeric(metrics), {CHECKPOINT_FILE: Path(checkpoint_path)})
        if tracker is not None:
            tracker.log_metrics(job["run_id"], metrics, step=int(metrics["epoch"]))
        _state_file(job, "progress", {"epoch": int(metrics["epoch"]), "pid": os.getpid(), "time": time.time()})

    t0 = time.time()
    result = train(cfg, resume=(out / CHECKPOINT_FILE).exists(), on_epoch=on_epoch, data=data, progress=False)
    t1 = time.time()
    _, model = load_model(result.checkpoint, device=device)
    evaluation = evaluate(model, data, cfg.eval, device=device, out_dir=out / "eval", progress=False, **fid_kwargs)
    t2 = time.time()
    objective = make_objective(job["objective"], job["fid_weight"])
    final = {
        **_numeric(evaluation.metrics),
        **objective.derive(evaluation.metrics, cfg.eval.levels),
        # Not "epoch": ASHA's time attribute, which must not see the final report.
        "epochs_trained": float(len(result.history)),
        "train_seconds": t1 - t0,
        "eval_seconds": t2 - t1,
        # Unix times of this attempt's training (row columns, not metrics: see TRAIN_TIMES).
        "train_started_at": t0,
        "train_finished_at": t1,
        "resumed_from_epoch": float(resumed_from),
        # From the Tune function's start to this loop's start: the executor's overhead.
        "startup_seconds": entered - float(job["extra"].get("trial_started", entered)),
        "data_seconds": t0 - entered,
        FINAL_KEY: 1.0,
    }
    if tracker is not None:
        log_trial_outputs(tracker, job["run_id"], final, len(result.history), result.checkpoint, out)
    _report_with_checkpoint(reporter, final, {CHECKPOINT_FILE: result.checkpoint, "eval": out / "eval"})
    return final


def feature_net_kwargs(job: dict[str, Any]) -> dict[str, Any]:
    """``evaluate``'s ``feature_net`` argument: the sweep's FID network, fetched and checked (radae.sweep.fidnet)."""
    from radae.sweep.fidnet import fetch_feature_net

    space = fetch_feature_net(job["extra"].get("fid_network"))
    return {"feature_net": space} if space is not None else {}


def split_times(final: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, timing columns) of a final report: :data:`TRAIN_TIMES` are Unix times, not metrics."""
    return {k: v for k, v in final.items() if k not in TRAIN_TIMES}, {k: final.get(k) for k in TRAIN_TIMES}


def take_restored(src: Path, dest: Path, origin: str) -> int | None:
    """Copy a checkpoint restored from Ray storage to ``dest`` once the project's loader accepts it.

    ``src`` is read with :func:`radae.checkpoint.load_checkpoint` (``torch.load(weights_only=True)``):
    a file holding anything but tensors and plain containers, such as a crafted pickle written to
    the bucket, is refused with a :class:`~radae.checkpoint.CheckpointError` naming ``origin`` (its
    place in storage) before any code of it runs or any file of the trial changes. Returns the
    checkpoint's epoch, or None when ``src`` does not exist.
    """
    from radae.checkpoint import CheckpointError, load_checkpoint, write_atomic

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


def log_trial_outputs(tracker: Any, run_id: str, final: Mapping[str, Any], epochs: int, checkpoint: Path, out: Path) -> None:
    """A trained and evaluated configuration's MLflow record: final metrics, checkpoint, evaluation, training files."""
    tracker.log_metrics(run_id, split_times(final)[0], step=epochs)
    tracker.log_artifacts(run_id, checkpoint, "checkpoint")
    tracker.log_artifacts(run_id, out / "eval", "eval")
    for name in TRAIN_ARTIFACTS:
        tracker.log_artifacts(run_id, out / name, "train")


# ---- executors: where worker_loop runs ----------------------------------------------------------
@EXECUTORS.register("direct")
def run_direct(job: dict[str, Any], ctx: SweepContext) -> dict[str, Any]:
    """Run the loop inside the Tune function (reports through ``ray.tune.report``)."""
    return worker_loop({**job, "reporter": "tune"})


@EXECUTORS.register("torch")
def run_torch(job: dict[str, Any], ctx: SweepContext) -> dict[str, Any]:
    """Run the loop in a Ray Train ``TorchTrainer``; a retried trial resumes its run by name."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from radae.sweep.packing import TrialResources

    storage_path, fs = ctx.settings().ray_storage("train", ctx.sweep_id)
    trainer = TorchTrainer(
        worker_loop,
        train_loop_config={**job, "reporter": "train"},
        scaling_config=ScalingConfig(
            num_workers=ctx.num_workers, use_gpu=ctx.use_gpu,
            resources_per_worker=TrialResources(ctx.gpus_per_trial).worker_resources(ctx.cpus_per_worker, ctx.use_gpu),
        ),
        run_config=RunConfig(
            name=f"{ctx.sweep_id}-{job['trial_id']}",
            storage_path=storage_path,
            storage_filesystem=fs,
            callbacks=[TuneReportCallback()],
            # Worker failures propagate to Tune, whose FailureConfig retries the whole trial.
            failure_config=FailureConfig(max_failures=0),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    result = trainer.fit()
    if result.metrics is None or not result.metrics.get(FINAL_KEY):
        raise RuntimeError(f"trial {job['trial_id']}: the trainer returned no final metrics ({result.error})")
    return dict(result.metrics)


# ---- the Tune trainable -------------------------------------------------------------------------
def run_trial(params: dict[str, Any], ctx: SweepContext) -> None:
    """Ray Tune function trainable of one trial (bind ``ctx`` with ``tune.with_parameters``)."""
    from ray import tune

    from radae.config import apply_overrides
    from radae.sweep import results
    from radae.sweep.fidnet import fid_columns, fid_tags
    from radae.sweep.packing import PACK_KEY
    from radae.sweep.seeds import seed_tags, trial_config
    from radae.sweep.space import SearchSpace
    from radae.sweep.tracking import Tracker

    trial_id = tune.get_context().get_trial_id()
    if PACK_KEY in params:
        from radae.sweep.packed_trial import run_pack

        return run_pack(params[PACK_KEY], trial_id, ctx)
    settings = ctx.settings()
    stored = results.read_row(settings, ctx.sweep_id, trial_id)
    if stored is not None and stored.get("status") == "completed":
        tune.report({k[len("metric.") :]: v for k, v in stored.items() if k.startswith("metric.") and v is not None})
        return

    started = time.time()
    space = SearchSpace.from_dict(ctx.space)
    cfg, params, seeded = trial_config(space, apply_overrides_base(ctx.base), params)
    fid_net = ctx.fid_network(cfg.data.name)
    out_dir = Path(ctx.work_dir).expanduser().resolve() / ctx.sweep_id / trial_id
    cfg = apply_overrides(cfg, {"train.out_dir": str(out_dir)})
    tracker = Tracker(ctx.tracking_uri, ctx.experiment)
    run_id = tracker.trial_run(ctx.parent_run_id, ctx.sweep_id, trial_id, cfg.flat(),
                               {**{f"param.{k}": v for k, v in params.items()}, **seed_tags(seeded), **fid_tags(fid_net)})
    job = asdict(
        TrialJob(ctx.sweep_id, trial_id, cfg.to_dict(), run_id, ctx.tracking_uri, ctx.experiment, ctx.objective,
                 ctx.fid_weight, ctx.state_dir, ctx.threads,
                 extra={"trial_started": started, "gpu_fraction": ctx.gpus_per_trial, "fid_network": fid_net})
    )
    executor: Callable[[dict[str, Any], SweepContext], dict[str, Any]] = EXECUTORS.get(ctx.executor)
    # A failure leaves the run RUNNING: a retry continues it; the driver's RowsCallback marks
    # trials that end pruned (KILLED) or failed for good (FAILED).
    final = executor(job, ctx)
    finished = time.time()
    metrics, train_times = split_times(final)
    row = results.make_row(
        sweep_id=ctx.sweep_id, trial_id=trial_id, status="completed", config=cfg.flat(), params=params, metrics=metrics,
        timings={"started_at": started, "finished_at": finished, "wall_seconds": finished - started,
                 "train_seconds": final.get("train_seconds"), "eval_seconds": final.get("eval_seconds"), **train_times},
        extra={"resumed_from_epoch": int(final.get("resumed_from_epoch", 0)), "executor": ctx.executor, **seeded,
               **fid_columns(fid_net), "mlflow_run_id": run_id, "mlflow_experiment_id": tracker.experiment_id},
    )
    results.write_row(settings, row)
    tracker.end(run_id, "FINISHED")


def apply_overrides_base(base: Mapping[str, Any]):
    """``RunConfig()`` with the sweep's base overrides (definition base + CLI --set)."""
    from radae.config import RunConfig, apply_overrides

    return apply_overrides(RunConfig(), dict(base))
