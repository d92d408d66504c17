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

    def settings(self) -> StorageSettings:
        """Storage settings with the credentials of this process's environment."""
        return StorageSettings.from_env(**self.storage)


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


def worker_loop(job: dict[str, Any]) -> dict[str, Any]:
    """Train (resuming from the latest Ray checkpoint), evaluate, report; returns the final metrics."""
    import torch

    from radae.checkpoint import load_model
    from radae.config import RunConfig, apply_overrides
    from radae.data import load_dataset
    from radae.sweep.packing import cap_gpu_memory
    from radae.sweep.tracking import Tracker
    from radae.train import train
    from radae.trainer import resolve_device

    if job["extra"].get("members"):
        from radae.sweep.packed_trial import packed_loop

        return packed_loop(job)
    entered = time.time()
    evaluate = _evaluator()
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
            if (Path(ckpt_dir) / CHECKPOINT_FILE).exists():
                out.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(ckpt_dir) / CHECKPOINT_FILE, out / CHECKPOINT_FILE)
    if (out / CHECKPOINT_FILE).exists():
        resumed_from = int(torch.load(out / CHECKPOINT_FILE, map_location="cpu", weights_only=False).get("epoch", 0))

    tracker = Tracker(job["tracking_uri"], job["experiment"]) if reporter.rank == 0 else None
    device = resolve_device(cfg.train.device)
    data = load_dataset(cfg.data, device)

    def on_epoch(metrics: dict[str, Any], checkpoint_path: str) -> None:
        _report_with_checkpoint(reporter, _numeric(metrics), {CHECKPOINT_FILE: Path(checkpoint_path)})
        if tracker is not None:
            tracker.log_metrics(job["run_id"], metrics, step=int(metrics["epoch"]))
        _state_file(job, "progress", {"epoch": int(metrics["epoch"]), "pid": os.getpid(), "time": time.time()})

    t0 = time.time()
    result = train(cfg, resume=(out / CHECKPOINT_FILE).exists(), on_epoch=on_epoch, data=data, progress=False)
    t1 = time.time()
    _, model = load_model(result.checkpoint, device=device)
    evaluation = evaluate(model, data, cfg.eval, device=device, out_dir=out / "eval", progress=False)
    t2 = time.time()
    objective = make_objective(job["objective"], job["fid_weight"])
    final = {
        **_numeric(evaluation.metrics),
        **objective.derive(evaluation.metrics, cfg.eval.levels),
        # Not "epoch": ASHA's time attribute, which must not see the final report.
        "epochs_trained": float(len(result.history)),
        "train_seconds": t1 - t0,
        "eval_seconds": t2 - t1,
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


def log_trial_outputs(tracker: Any, run_id: str, final: Mapping[str, Any], epochs: int, checkpoint: Path, out: Path) -> None:
    """A trained and evaluated configuration's MLflow record: final metrics, checkpoint, evaluation, training files."""
    tracker.log_metrics(run_id, final, step=epochs)
    tracker.log_artifacts(run_id, checkpoint, "checkpoint")
    tracker.log_artifacts(run_id, out / "eval", "eval")
    for name in TRAIN_ARTIFACTS:
        tracker.log_artifacts(run_id, out / name, "train")


def _evaluator() -> Callable[..., Any]:
    """``radae.evaluate.evaluate``, or the ``module:function`` named by ``$RADAE_SWEEP_EVALUATE``
    (same signature; lets experiments and tests plug in another evaluator without code changes)."""
    import importlib

    module, _, name = os.environ.get("RADAE_SWEEP_EVALUATE", "radae.evaluate:evaluate").partition(":")
    return getattr(importlib.import_module(module), name)


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
    from radae.sweep.packing import PACK_KEY
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
    cfg = space.to_config(apply_overrides_base(ctx.base), params)
    out_dir = Path(ctx.work_dir).expanduser().resolve() / ctx.sweep_id / trial_id
    cfg = apply_overrides(cfg, {"train.out_dir": str(out_dir)})
    tracker = Tracker(ctx.tracking_uri, ctx.experiment)
    run_id = tracker.trial_run(ctx.parent_run_id, ctx.sweep_id, trial_id, cfg.flat(), {f"param.{k}": v for k, v in params.items()})
    job = asdict(
        TrialJob(ctx.sweep_id, trial_id, cfg.to_dict(), run_id, ctx.tracking_uri, ctx.experiment, ctx.objective,
                 ctx.fid_weight, ctx.state_dir, ctx.threads,
                 extra={"trial_started": started, "gpu_fraction": ctx.gpus_per_trial})
    )
    executor: Callable[[dict[str, Any], SweepContext], dict[str, Any]] = EXECUTORS.get(ctx.executor)
    # A failure leaves the run RUNNING: a retry continues it; the driver's RowsCallback marks
    # trials that end pruned (KILLED) or failed for good (FAILED).
    final = executor(job, ctx)
    finished = time.time()
    row = results.make_row(
        sweep_id=ctx.sweep_id, trial_id=trial_id, status="completed", config=cfg.flat(), params=params, metrics=final,
        timings={"started_at": started, "finished_at": finished, "wall_seconds": finished - started,
                 "train_seconds": final.get("train_seconds"), "eval_seconds": final.get("eval_seconds")},
        extra={"resumed_from_epoch": int(final.get("resumed_from_epoch", 0)), "executor": ctx.executor,
               "mlflow_run_id": run_id, "mlflow_experiment_id": tracker.experiment_id},
    )
    results.write_row(settings, row)
    tracker.end(run_id, "FINISHED")


def apply_overrides_base(base: Mapping[str, Any]):
    """``RunConfig()`` with the sweep's base overrides (definition base + CLI --set)."""
    from radae.config import RunConfig, apply_overrides

    return apply_overrides(RunConfig(), dict(base))
