"""A packed trial: ``pack_size`` configurations of one architecture in one Tune trial, results kept apart.

:func:`run_pack` (called by :func:`radae.sweep.trainable.run_trial` for a config ``{"pack": [...]}``)
gives each member ``k`` the id ``<tune trial id>-m<k>``, its own ``train.out_dir``, its own nested
MLflow run (tags ``radae.pack_trial``/``radae.pack_member``) and, at the end, its own Parquet row in
the same schema as an unpacked trial (plus ``pack_trial``, ``pack_member``, ``pack_size``).

:func:`packed_loop` (run by the executor, like :func:`radae.sweep.trainable.worker_loop`) trains the
members with :func:`radae.fast.train_packed`, evaluates each, and reports to Ray:

- per epoch: ``m<k>.<metric>`` of every member, ``epoch``, and ``val_loss`` = the pack's best
  (lowest) validation loss, which an ASHA scheduler uses (a pack is stopped only when its best
  member is unpromising), with one Ray checkpoint holding ``m<k>/checkpoint.pt`` of every member;
- at the end: ``m<k>.<metric>`` of every member's evaluation, ``pack.m<k>.<objective metric>``
  (told to Optuna per member by :class:`radae.sweep.searcher.PackedOptunaSearch`) and, for Tune's
  own bookkeeping, each objective metric's best value over the pack.

A retried trial resumes every member from that checkpoint; a member that diverged earlier (its
checkpoint lags) is not trained again and ends with status ``error``. A pack whose every row is
already ``completed`` only reports them: a restored sweep never duplicates rows or repeats work.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from radae.sweep.objective import FINAL_KEY, make_objective
from radae.sweep.packing import cap_gpu_memory, member_ids, member_metric
from radae.sweep.trainable import (
    CHECKPOINT_FILE,
    EXECUTORS,
    REPORTERS,
    SweepContext,
    TrialJob,
    _numeric,
    _report_with_checkpoint,
    _state_file,
    apply_overrides_base,
    feature_net_kwargs,
    log_trial_outputs,
    split_times,
    take_restored,
)


def _prefixed(metrics: dict[str, Any], k: int) -> dict[str, Any]:
    return {f"m{k}.{name}": v for name, v in metrics.items()}


def _member_metrics(report: dict[str, Any], k: int) -> dict[str, Any]:
    prefix = f"m{k}."
    return {name[len(prefix) :]: v for name, v in report.items() if name.startswith(prefix)}


def _pack_summary(finals: list[dict[str, Any] | None], objective_name: str, fid_weight: float) -> dict[str, float]:
    """``pack.m<k>.<metric>`` per evaluated member and each objective metric's best over the pack."""
    objective = make_objective(objective_name, fid_weight)
    metrics = objective.searcher_metric if isinstance(objective.searcher_metric, list) else [objective.searcher_metric]
    modes = objective.searcher_mode if isinstance(objective.searcher_mode, list) else [objective.searcher_mode]
    out: dict[str, float] = {}
    for name, mode in zip(metrics, modes, strict=True):
        values = []
        for k, final in enumerate(finals):
            if final is not None and name in final:
                out[member_metric(k, name)] = float(final[name])
                values.append(float(final[name]))
        if values:
            out[name] = max(values) if mode == "max" else min(values)
    return out


def packed_loop(job: dict[str, Any]) -> dict[str, Any]:
    """Train the pack (resuming from the latest Ray checkpoint), evaluate each member, report."""
    import torch

    from radae.checkpoint import load_model
    from radae.config import RunConfig, apply_overrides
    from radae.data import load_dataset
    from radae.evaluate import evaluate
    from radae.fast import PackConfig, train_packed
    from radae.sweep.tracking import Tracker
    from radae.trainer import resolve_device

    entered = time.time()
    torch.set_num_threads(int(job.get("threads", 1)))
    cap_gpu_memory(job["extra"].get("gpu_fraction"))
    reporter = REPORTERS.create(job["reporter"])
    members = job["extra"]["members"]
    cfgs = [RunConfig.from_dict(m["cfg"]) for m in members]
    if reporter.rank > 0:  # extra Train workers train their own copy in their own folders
        cfgs = [apply_overrides(c, {"train.out_dir": f"{c.train.out_dir}/rank{reporter.rank}"}) for c in cfgs]
    outs = [Path(c.train.out_dir) for c in cfgs]
    _state_file(job, "pid", {"pid": os.getpid(), "rank": reporter.rank, "time": time.time()})

    # Only Ray's checkpoint counts: files an earlier attempt wrote after its last report are replaced
    # (or, with no report at all, removed) so every member restarts from one consistent epoch.
    restored = reporter.get_checkpoint()
    for out in outs:
        (out / CHECKPOINT_FILE).unlink(missing_ok=True)
    epochs: dict[int, int] = {}
    if restored is not None:
        with restored.as_directory() as ckpt_dir:
            for k, out in enumerate(outs):
                name = f"m{k}/{CHECKPOINT_FILE}"
                epoch = take_restored(Path(ckpt_dir) / name, out / CHECKPOINT_FILE, f"{restored.path}/{name}")
                if epoch is not None:
                    epochs[k] = epoch
    present = sorted(epochs)
    resumed_from = max(epochs.values(), default=0)
    # Members missing from the checkpoint or behind the others diverged in an earlier attempt: not retrained.
    live = [k for k in range(len(cfgs)) if epochs.get(k, 0) == resumed_from] if present else list(range(len(cfgs)))
    lagging = {k: f"diverged before epoch {resumed_from + 1} in an earlier attempt" for k in range(len(cfgs)) if k not in live}

    tracker = Tracker(job["tracking_uri"], job["experiment"]) if reporter.rank == 0 else None
    device = resolve_device(cfgs[0].train.device)
    data = load_dataset(cfgs[0].data, device)
    fid_kwargs = feature_net_kwargs(job)  # one dataset per pack (data.name is shared)
    pending: dict[int, tuple[dict[str, Any], str]] = {}

    def on_epoch(i: int, metrics: dict[str, Any], checkpoint_path: str) -> None:
        k = live[i]
        pending[k] = (metrics, checkpoint_path)
        if tracker is not None:
            tracker.log_metrics(members[k]["run_id"], metrics, step=int(metrics["epoch"]))

    def after_epoch(epoch: int) -> None:
        report: dict[str, Any] = {"epoch": epoch, "pack_live": float(len(pending))}
        for k, (metrics, _) in pending.items():
            report.update(_prefixed(_numeric(metrics), k))
        if pending:
            report["val_loss"] = min(float(m["val_loss"]) for m, _ in pending.values())
        _report_with_checkpoint(reporter, report, {f"m{k}/{CHECKPOINT_FILE}": Path(p) for k, (_, p) in pending.items()})
        pending.clear()
        _state_file(job, "progress", {"epoch": epoch, "pid": os.getpid(), "time": time.time()})

    t0 = time.time()
    pack = PackConfig(size=len(live), noise=job["extra"].get("pack_noise", "member"))
    trained = train_packed([cfgs[k] for k in live], resume=resumed_from > 0, data=data, pack=pack,
                           on_epoch=on_epoch, after_epoch=after_epoch, progress=False)
    t1 = time.time()
    objective = make_objective(job["objective"], job["fid_weight"])
    finals: list[dict[str, Any] | None] = [None] * len(cfgs)
    errors = dict(lagging)
    for i, result in enumerate(trained):
        k = live[i]
        if result.summary.get("status") != "ok":
            errors[k] = str(result.summary.get("error", "diverged"))
            continue
        e0 = time.time()
        _, model = load_model(result.checkpoint, device=device)
        evaluation = evaluate(model, data, cfgs[k].eval, device=device, out_dir=outs[k] / "eval", progress=False, **fid_kwargs)
        finals[k] = {
            **_numeric(evaluation.metrics),
            **objective.derive(evaluation.metrics, cfgs[k].eval.levels),
            "epochs_trained": float(len(result.history)),
            "train_seconds": t1 - t0,
            "eval_seconds": time.time() - e0,
            FINAL_KEY: 1.0,
        }
        if tracker is not None:
            log_trial_outputs(tracker, members[k]["run_id"], finals[k], len(result.history), result.checkpoint, outs[k])
    final: dict[str, Any] = {
        "resumed_from_epoch": float(resumed_from),
        "startup_seconds": entered - float(job["extra"].get("trial_started", entered)),
        "data_seconds": t0 - entered,
        "train_seconds": t1 - t0,
        "eval_seconds": time.time() - t1,
        "train_started_at": t0,
        "train_finished_at": t1,
        "pack_size": float(len(cfgs)),
        FINAL_KEY: 1.0,
    }
    for k in range(len(cfgs)):
        final.update(_prefixed(finals[k], k) if finals[k] is not None else {f"m{k}.diverged": 1.0, f"m{k}.error": errors[k]})
    final.update(_pack_summary(finals, job["objective"], job["fid_weight"]))
    files: dict[str, Path] = {}
    for k, out in enumerate(outs):
        files[f"m{k}/{CHECKPOINT_FILE}"] = out / CHECKPOINT_FILE
        files[f"m{k}/eval"] = out / "eval"
    _report_with_checkpoint(reporter, final, files)
    return final


def run_pack(pack: list[dict[str, Any]], trial_id: str, ctx: SweepContext) -> None:
    """The packed Tune trial: member configs, runs and rows around :func:`packed_loop`."""
    from dataclasses import asdict

    from ray import tune

    from radae.config import apply_overrides
    from radae.sweep import results
    from radae.sweep.fidnet import fid_columns, fid_tags
    from radae.sweep.seeds import seed_tags, trial_config
    from radae.sweep.space import SearchSpace
    from radae.sweep.tracking import Tracker

    settings = ctx.settings()
    ids = member_ids(trial_id, len(pack))
    stored = [results.read_row(settings, ctx.sweep_id, i) for i in ids]
    if all(r is not None and r.get("status") == "completed" for r in stored):
        report: dict[str, Any] = {FINAL_KEY: 1.0}
        finals = []
        for k, row in enumerate(stored):
            own = {n[len("metric.") :]: v for n, v in row.items() if n.startswith("metric.") and isinstance(v, int | float)}
            report.update(_prefixed(own, k))
            finals.append(own)
        report.update(_pack_summary(finals, ctx.objective, ctx.fid_weight))
        tune.report(report)
        return

    started = time.time()
    space = SearchSpace.from_dict(ctx.space)
    base = apply_overrides_base(ctx.base)
    work = Path(ctx.work_dir).expanduser().resolve() / ctx.sweep_id
    tracker = Tracker(ctx.tracking_uri, ctx.experiment)
    members, cfgs, owns, seeded = [], [], [], []
    for k, (member, params) in enumerate(zip(ids, pack, strict=True)):
        cfg, own, columns = trial_config(space, base, params)
        cfg = apply_overrides(cfg, {"train.out_dir": str(work / member)})
        fid_net = ctx.fid_network(cfg.data.name)
        tags = {**{f"param.{p}": v for p, v in own.items()}, "radae.pack_trial": trial_id, "radae.pack_member": k,
                **seed_tags(columns), **fid_tags(fid_net)}
        run_id = tracker.trial_run(ctx.parent_run_id, ctx.sweep_id, member, cfg.flat(), tags)
        members.append({"trial_id": member, "cfg": cfg.to_dict(), "run_id": run_id})
        cfgs.append(cfg)
        owns.append(own)
        seeded.append(columns)
    extra = {"trial_started": started, "gpu_fraction": ctx.gpus_per_trial, "members": members, "pack_noise": ctx.pack_noise,
             "fid_network": fid_net}
    job = asdict(TrialJob(ctx.sweep_id, trial_id, cfgs[0].to_dict(), members[0]["run_id"], ctx.tracking_uri, ctx.experiment,
                          ctx.objective, ctx.fid_weight, ctx.state_dir, ctx.threads, extra=extra))
    final = EXECUTORS.get(ctx.executor)(job, ctx)
    finished = time.time()
    _, train_times = split_times(final)
    for k, (member, params, cfg) in enumerate(zip(ids, owns, cfgs, strict=True)):
        own = _member_metrics(final, k)
        error = own.pop("error", "diverged")
        ok = bool(own.get(FINAL_KEY))
        row = results.make_row(
            sweep_id=ctx.sweep_id, trial_id=member, status="completed" if ok else "error", config=cfg.flat(), params=params,
            metrics=own,
            timings={"started_at": started, "finished_at": finished, "wall_seconds": finished - started,
                     "train_seconds": final.get("train_seconds"), "eval_seconds": own.get("eval_seconds"), **train_times},
            extra={"resumed_from_epoch": int(final.get("resumed_from_epoch", 0)), "executor": ctx.executor,
                   "pack_trial": trial_id, "pack_member": k, "pack_size": len(pack), **seeded[k], **fid_columns(fid_net),
                   "mlflow_run_id": members[k]["run_id"], "mlflow_experiment_id": tracker.experiment_id,
                   **({} if ok else {"error": str(error)})},
        )
        results.write_row(settings, row)
        tracker.end(members[k]["run_id"], "FINISHED" if ok else "FAILED")
