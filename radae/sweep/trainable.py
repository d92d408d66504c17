"""The Tune function trainable: one Tune trial = build its configurations, train and evaluate them, write rows.

:func:`run_trial` (the Tune trainable) decides, once, the trial's shape (:func:`radae.sweep.shapes.shape_of`):
``single`` (one configuration) or ``packed`` (a config ``{"pack": [...]}``; :mod:`radae.sweep.shapes`). It builds each
configuration's RunConfig from the sweep's base and its sampled params (``trial_config``: dotted
keys, unknown ones rejected), opens its nested MLflow run, runs :func:`worker_loop` through an
executor and writes one Parquet row per configuration. Executors (registry :data:`EXECUTORS`):

- ``torch``: a Ray Train ``TorchTrainer`` (one worker, a GPU when the cluster has one) with
  ``TuneReportCallback``, run name ``<sweep>-<trial>``. Ray 2.60 (Train V2) cannot nest a trainer
  in a Tuner, so the Tune function builds it and calls ``fit()`` (stack.md). Costs ~12 s and
  ~3.4 GB RSS per trial.
- ``direct``: :func:`worker_loop` runs inside the Tune function itself (~3.5 s per trial).

:func:`worker_loop` resumes from the latest Ray checkpoint (a retried trial continues where the
killed one stopped: Train V2 restores its run by name; Tune hands the function its checkpoint),
reports every epoch with the checkpoint files, then calls
:func:`radae.sweep.trial.train_and_evaluate` and reports the final metrics (``evaluated`` = 1) with a
checkpoint (Train V2's ``Result.metrics`` stays None without one). The process's CUDA memory is
capped at ``gpus_per_trial`` (:mod:`radae.sweep.packing`).

A trial whose rows are already ``completed`` in the bucket reports the stored metrics and returns:
a restored sweep never repeats finished work.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from radae.checkpoint import load_checkpoint
from radae.config import apply_overrides
from radae.data import load_dataset
from radae.objective import FINAL_KEY, make_objective
from radae.registry import Registry
from radae.store import images, results
from radae.store.fidnet import fetch_feature_net, fid_columns, fid_tags
from radae.store.tracking import Tracker
from radae.sweep.packing import TrialResources, cap_gpu_memory
from radae.sweep.seeds import seed_tags, trial_config
from radae.sweep.shapes import SHAPES, TrialShape, shape_of
from radae.sweep.space import SearchSpace
from radae.sweep.trial import (
    CHECKPOINT_FILE,
    REPORTERS,
    DiskFullError,
    Member,
    Startup,
    SweepContext,
    TrialJob,
    log_trial_outputs,
    numeric,
    report_with_checkpoint,
    restore_checkpoint,
    train_and_evaluate,
    trial_row,
    write_state,
)
from radae.trainer import resolve_device

EXECUTORS: Registry = Registry("executor")


def ray_node_id() -> str | None:
    """The Ray node this trial's Tune function runs on (its row's ``node_id``: which node ran it)."""
    import ray  # Ray is imported where a trial runs (as this module's other Ray imports), not at import

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


# ---- the worker loop: where the trial trains ---------------------------------------------------


def worker_loop(config: dict[str, Any]) -> dict[str, Any]:
    """Run the ``{"job": TrialJob}`` of an executor; a full disk under the trial's folder is a :class:`DiskFullError`.

    Checkpoints are written atomically (:func:`radae.checkpoint.save_checkpoint`), so the last good one
    survives in the folder and in Ray storage; the retried or resumed trial continues from it.
    """
    job: TrialJob = config["job"]
    try:
        return run_job(job)
    except OSError as exc:
        named = DiskFullError.of(exc, job.trial_id, ", ".join(m.cfg.train.out_dir for m in job.members))
        if named is exc:
            raise
        raise named from exc


def restore(shape: TrialShape, reporter: Any, outs: list[Path]) -> dict[int, int]:
    """Member -> epoch of the checkpoint each member resumes from (Ray's latest, through :func:`restore_checkpoint`)."""
    restored = reporter.get_checkpoint()
    if not shape.keep_local_checkpoints():
        # Files an earlier attempt wrote after its last report are replaced (or, with no report, removed).
        for out in outs:
            (out / CHECKPOINT_FILE).unlink(missing_ok=True)
    if restored is not None:
        with restored.as_directory() as ckpt_dir:
            for k, out in enumerate(outs):
                name = f"{shape.folder(k)}{CHECKPOINT_FILE}"
                restore_checkpoint(Path(ckpt_dir) / name, out / CHECKPOINT_FILE, f"{restored.path}/{name}")
    return {
        k: int(load_checkpoint(out / CHECKPOINT_FILE).get("epoch", 0))
        for k, out in enumerate(outs)
        if (out / CHECKPOINT_FILE).exists()
    }


def run_job(job: TrialJob) -> dict[str, Any]:
    """Restore, train and evaluate the job's members, reporting to Ray; returns the final report."""
    import torch

    entered = time.time()
    shape: TrialShape = SHAPES.get(job.shape)
    torch.set_num_threads(job.ctx.threads)
    cap_gpu_memory(job.ctx.gpus_per_trial)
    reporter = REPORTERS.create(job.reporter)
    cfgs = [m.cfg for m in job.members]
    if reporter.rank > 0:
        # radae.train is single-process: extra workers train their own copy in their own folder
        # (until the trainer supports DDP) and never report checkpoints or log to MLflow.
        cfgs = [apply_overrides(c, {"train.out_dir": f"{c.train.out_dir}/rank{reporter.rank}"}) for c in cfgs]
    outs = [Path(c.train.out_dir) for c in cfgs]
    write_state(job, "pid", {"pid": os.getpid(), "rank": reporter.rank, "time": time.time()})

    epochs = restore(shape, reporter, outs)
    resumed_from = max(epochs.values(), default=0)
    # Members missing from the checkpoint or behind the others diverged in an earlier attempt: not retrained.
    live = [k for k in range(len(cfgs)) if epochs.get(k, 0) == resumed_from] if epochs else list(range(len(cfgs)))
    errors = {
        k: f"diverged before epoch {resumed_from + 1} in an earlier attempt" for k in range(len(cfgs)) if k not in live
    }

    tracker = Tracker(job.ctx.tracking_uri, job.ctx.experiment) if reporter.rank == 0 else None
    device = resolve_device(cfgs[0].train.device)
    data = load_dataset(cfgs[0].data, device)  # one dataset per pack (data.name is shared)
    feature_net = fetch_feature_net(job.fid_network)  # fetched and checked before training: a bad network fails now
    pending: dict[int, tuple[dict[str, Any], str]] = {}

    def on_epoch(i: int, metrics: dict[str, Any], checkpoint_path: str) -> None:
        pending[live[i]] = (metrics, checkpoint_path)
        if tracker is not None:
            tracker.log_metrics(job.members[live[i]].run_id, metrics, step=int(metrics["epoch"]))

    def after_epoch(epoch: int) -> None:
        report = shape.epoch_report(epoch, {k: m for k, (m, _) in pending.items()})
        report_with_checkpoint(
            reporter, report, {f"{shape.folder(k)}{CHECKPOINT_FILE}": Path(p) for k, (_, p) in pending.items()}
        )
        pending.clear()
        write_state(job, "progress", {"epoch": epoch, "pid": os.getpid(), "time": time.time()})

    trained = [cfgs[k] for k in live]
    objective = make_objective(job.ctx.objective, job.ctx.fid_weight)
    outcomes = train_and_evaluate(
        trained,
        data,
        objective,
        device=device,
        feature_net=feature_net,
        startup=Startup(entered - job.started, time.time() - entered, resumed_from),
        train=lambda: shape.train(
            trained,
            resume=bool(epochs),
            data=data,
            pack_noise=job.ctx.pack_noise,
            on_epoch=on_epoch,
            after_epoch=after_epoch,
        ),
    )
    finals: list[dict[str, Any] | None] = [None] * len(cfgs)
    for k, outcome in zip(live, outcomes, strict=True):
        if outcome.final is None:
            errors[k] = outcome.error or "diverged"
            continue
        finals[k] = outcome.final
        if tracker is not None:
            log_trial_outputs(tracker, job.members[k].run_id, outcome.final, outcome.checkpoint, outs[k])
            store_images(job, job.members[k], outcome.images)
    final = shape.final_report(finals, errors, objective)
    files = {}
    for k, out in enumerate(outs):
        files[f"{shape.folder(k)}{CHECKPOINT_FILE}"] = out / CHECKPOINT_FILE
        files[f"{shape.folder(k)}eval"] = out / "eval"
    report_with_checkpoint(reporter, final, files)
    return final


def store_images(job: TrialJob, member: Member, per_image: dict[str, dict[int, float]] | None) -> None:
    """Write the member's per-image table beside the sweep's trial rows (:func:`radae.store.results.write_images`;
    nothing when the sweep has no storage, e.g. a worker loop run without a bucket)."""
    if not per_image or not job.ctx.storage:
        return
    rows = images.records(per_image, sweep_id=job.ctx.sweep_id, trial_id=member.trial_id, columns=member.columns)
    results.write_images(job.ctx.settings(), job.ctx.sweep_id, member.trial_id, rows)


# ---- executors: where worker_loop runs ----------------------------------------------------------
@EXECUTORS.register("direct")
def run_direct(job: TrialJob) -> dict[str, Any]:
    """Run the loop inside the Tune function (reports through ``ray.tune.report``)."""
    return worker_loop({"job": replace(job, reporter="tune")})


@EXECUTORS.register("torch")
def run_torch(job: TrialJob) -> dict[str, Any]:
    """Run the loop in a Ray Train ``TorchTrainer``; a retried trial resumes its run by name."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    ctx = job.ctx
    storage_path, fs = ctx.settings().ray_storage("train", ctx.sweep_id)
    trainer = TorchTrainer(
        worker_loop,
        train_loop_config={"job": replace(job, reporter="train")},
        scaling_config=ScalingConfig(
            num_workers=ctx.num_workers,
            use_gpu=ctx.use_gpu,
            resources_per_worker=TrialResources(ctx.gpus_per_trial).worker_resources(ctx.cpus_per_worker, ctx.use_gpu),
        ),
        run_config=RunConfig(
            name=f"{ctx.sweep_id}-{job.trial_id}",
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
        raise RuntimeError(f"trial {job.trial_id}: the trainer returned no final metrics ({result.error})")
    return dict(result.metrics)


# ---- the Tune trainable -------------------------------------------------------------------------
def run_trial(params: dict[str, Any], ctx: SweepContext) -> None:
    """Ray Tune function trainable of one trial (bind ``ctx`` with ``tune.with_parameters``)."""
    from ray import tune

    started = time.time()
    trial_id = tune.get_context().get_trial_id()
    kind, shape = shape_of(params)  # single or packed: decided here, once
    points = shape.member_params(params)
    ids = shape.member_ids(trial_id, len(points))
    settings = ctx.settings()
    objective = make_objective(ctx.objective, ctx.fid_weight)
    stored = [results.read_row(settings, ctx.sweep_id, i) for i in ids]
    if all(r is not None and r.get("status") == "completed" for r in stored):
        finals = [numeric({n[len("metric.") :]: v for n, v in r.items() if n.startswith("metric.")}) for r in stored]
        tune.report(shape.final_report(finals, {}, objective))
        return

    space = SearchSpace.from_dict(ctx.space)
    tracker = Tracker(ctx.tracking_uri, ctx.experiment)
    work = Path(ctx.work_dir).expanduser().resolve() / ctx.sweep_id
    members = []
    for k, (member_id, point) in enumerate(zip(ids, points, strict=True)):
        cfg, own, seeded = trial_config(space, ctx.base, point)
        cfg = apply_overrides(cfg, {"train.out_dir": str(work / member_id)})
        net = ctx.fid_network(cfg.data.name)
        place = shape.columns(trial_id, k, len(points))  # a pack member's trial, index and pack size
        columns = {**place, **seeded, **fid_columns(net)}
        tags = {
            **{f"param.{p}": v for p, v in own.items()},
            **{f"radae.{c}": v for c, v in place.items()},
            **seed_tags(seeded),
            **fid_tags(net),
        }
        run_id = tracker.trial_run(ctx.parent_run_id, ctx.sweep_id, member_id, cfg.flat(), tags)
        members.append(Member(member_id, cfg, own, columns, run_id))
    job = TrialJob(ctx, trial_id, kind, tuple(members), started)
    executor: Callable[[TrialJob], dict[str, Any]] = EXECUTORS.get(ctx.executor)
    # A failure leaves the runs RUNNING: a retry continues them; the driver's RowsCallback marks
    # trials that end pruned (KILLED) or failed for good (FAILED).
    final = executor(job)
    for k, member in enumerate(members):
        own = shape.member_report(final, k)
        error = None if own.get(FINAL_KEY) else str(own.pop("error", "diverged"))
        row = trial_row(
            sweep_id=ctx.sweep_id,
            member=member,
            final=own,
            started=started,
            executor=ctx.executor,
            error=error,
            extra={
                "mlflow_run_id": member.run_id,
                "mlflow_experiment_id": tracker.experiment_id,
                "node_id": ray_node_id(),
                "smoke_test": ctx.smoke_test,
            },
        )
        results.write_row(settings, row)
        tracker.end(member.run_id, "FINISHED" if error is None else "FAILED")
