"""Builds and runs (or resumes) a sweep: searcher, scheduler, limits and retries in one place.

:func:`run_sweep` runs the preflight checks, connects to Ray, opens the sweep's parent MLflow run,
builds the Tuner (:func:`build_tuner`) with :class:`RowsCallback` and fits it. With
``resume=True`` it restores the interrupted sweep with ``Tuner.restore(path, trainable,
resume_errored=True)`` from ``bucket/prefix/ray/tune/<sweep_id>`` (built here: the hint Ray prints
drops the endpoint); the searcher's state (and its SQLite study) comes back with it.

Trials per GPU (:mod:`radae.sweep.packing`): each trial asks ``gpus_per_trial`` of a GPU, the
concurrency defaults to ``floor(cluster GPUs / gpus_per_trial)``, and with ``pack_size > 1`` the
definition's ``num_samples`` configurations run in ``ceil(num_samples / pack_size)`` Tune trials.
With ``seeds: S`` every configuration trains S times (``num_samples * S`` configurations-seeds,
:mod:`radae.sweep.seeds`). Before any trial, the driver stores the sweep's FID feature network
(:mod:`radae.store.fidnet`).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from radae.analysis.html_report import headline_metrics, render_sweep
from radae.analysis.report import export_report
from radae.objective import FINAL_KEY
from radae.store import results
from radae.store.fidnet import fid_columns, publish_feature_nets
from radae.store.lease import DriverLease, LeaseError
from radae.store.preflight import preflight
from radae.store.settings import StorageSettings
from radae.store.tracking import TRIAL_TAG, Tracker, compared_metrics
from radae.sweep import console
from radae.sweep.definition import SweepDefinition
from radae.sweep.options import SweepOptions
from radae.sweep.searcher import build_searcher
from radae.sweep.seeds import SEED_KEY, trial_config
from radae.sweep.shapes import shape_of
from radae.sweep.space import SPECS, SearchSpace
from radae.sweep.trainable import run_trial
from radae.sweep.trial import SweepContext, numeric

log = logging.getLogger(__name__)


class SweepError(RuntimeError):
    """The sweep cannot start or resume; the message says why."""


def tune_path(storage: StorageSettings, sweep_id: str) -> tuple[str, Any, str]:
    """(storage_path, filesystem, experiment path) of the sweep's Tune experiment."""
    storage_path, fs = storage.ray_storage("tune")
    return storage_path, fs, f"{storage_path}/{sweep_id}"


def _trial_members(ctx: SweepContext, trial: Any) -> list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(row id, params, last metrics, extra columns) of each configuration a Tune trial trains."""
    last = numeric(trial.last_result or {})
    _, shape = shape_of(trial.config)
    points = [
        {k: v for k, v in p.items() if k in ctx.space or k == SEED_KEY} for p in shape.member_params(trial.config)
    ]
    ids = shape.member_ids(trial.trial_id, len(points))
    return [
        (row_id, point, shape.member_report(last, k), shape.columns(trial.trial_id, k, len(points)))
        for k, (row_id, point) in enumerate(zip(ids, points, strict=True))
    ]


def _status_row(ctx: SweepContext, trial: Any, status: str) -> None:
    for row_id, params, metrics, extra in _trial_members(ctx, trial):
        cfg, own, seeded = trial_config(SearchSpace.from_dict(ctx.space), ctx.base, params)
        now = time.time()
        row = results.make_row(
            sweep_id=ctx.sweep_id,
            trial_id=row_id,
            status=status,
            config=cfg.flat(),
            params=own,
            metrics=metrics,
            timings={
                "started_at": None,
                "finished_at": now,
                "wall_seconds": None,
                "train_seconds": None,
                "eval_seconds": None,
            },
            extra={
                "resumed_from_epoch": None,
                "executor": ctx.executor,
                "smoke_test": ctx.smoke_test,
                **extra,
                **seeded,
                **fid_columns(ctx.fid_network(cfg.data.name)),
            },
        )
        results.write_row(ctx.settings(), row)


def _rows_callback(ctx: SweepContext):
    from ray.tune import Callback

    class RowsCallback(Callback):
        """Driver side: rows for trials that never reach their own (pruned by ASHA, failed for good)."""

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if not (trial.last_result or {}).get(FINAL_KEY):
                _status_row(ctx, trial, "pruned")
                _end_trial_runs(ctx, [m[0] for m in _trial_members(ctx, trial)], "KILLED")

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            _status_row(ctx, trial, "error")
            _end_trial_runs(ctx, [m[0] for m in _trial_members(ctx, trial)], "FAILED")

    return RowsCallback()


def _console_callback(ctx: SweepContext):
    from ray.tune import Callback

    def members(trial: Any) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(row id, searched params with the seed index as ``seed``, last metrics) per configuration."""
        out = []
        for row_id, params, metrics, _ in _trial_members(ctx, trial):
            shown = {k: v for k, v in params.items() if k != SEED_KEY}
            if SEED_KEY in params:
                shown["seed"] = params[SEED_KEY]
            out.append((row_id, shown, metrics))
        return out

    class ConsoleCallback(Callback):
        """Driver side: a short line per trial event and a closing table (:mod:`radae.sweep.console`)."""

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            for name, shown, _ in members(trial):
                print(console.started_line(name, shown), flush=True)

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            line = console.epoch_line(str(trial.trial_id), result)
            if line:
                print(line, flush=True)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            reports = (trial.last_result or {}).get("training_iteration")
            for name, shown, metrics in members(trial):
                print(console.done_line(name, shown, metrics, reports), flush=True)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            print(f"trial {trial.trial_id} failed: {trial.error_file or 'no error file'}", flush=True)

        def on_experiment_end(self, trials: list, **info: Any) -> None:
            rows = [(n, str(t.status), shown, m) for t in trials for n, shown, m in members(t)]
            print("\n" + console.final_table(rows), flush=True)

    return ConsoleCallback()


def _end_trial_runs(ctx: SweepContext, trial_ids: list[str], status: str) -> None:
    tracker = Tracker(ctx.tracking_uri, ctx.experiment)
    for run in tracker.trial_runs(ctx.sweep_id):
        if run.data.tags.get(TRIAL_TAG) in trial_ids:
            tracker.end(run.info.run_id, status)


def build_tuner(defn: SweepDefinition, opts: SweepOptions, ctx: SweepContext, concurrency: int | None = None):
    """The Tuner (fresh or restored) of this sweep."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    res = defn.resources
    trainable = tune.with_parameters(run_trial, ctx=ctx)
    # torch executor: the Tune function only waits on the TorchTrainer, whose worker holds the
    # CPU and the (fraction of a) GPU; direct: the Tune function trains and holds them itself.
    trainable = tune.with_resources(trainable, res.tune_resources(opts.executor, ctx.use_gpu))
    storage_path, fs, exp_path = tune_path(opts.storage, opts.sweep_id)
    check_sweep_state(opts)
    if opts.resume:
        log.info("restoring sweep %s from s3://%s", opts.sweep_id, exp_path)
        return tune.Tuner.restore(exp_path, trainable, resume_errored=True, storage_filesystem=fs)
    scheduler = None
    if defn.scheduler:
        s = defn.scheduler
        scheduler = ASHAScheduler(
            metric=s["metric"],
            mode=s["mode"],
            max_t=ctx_epochs(ctx),
            time_attr="epoch",
            grace_period=int(s.get("grace_period", 1)),
            reduction_factor=float(s.get("reduction_factor", 3)),
            stop_last_trials=False,
        )
    configurations = opts.num_samples or defn.num_samples
    searcher = build_searcher(
        defn.space,
        defn.objective,
        study_db=opts.study_db,
        study_name=opts.sweep_id,
        seed=opts.sampler_seed,
        pack_size=res.pack_size,
        total=configurations,
        seeds=defn.seeds,
    )
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=res.tune_samples(configurations * defn.seeds),
            max_concurrent_trials=concurrency or opts.concurrency or 1,
        ),
        run_config=tune.RunConfig(
            name=opts.sweep_id,
            storage_path=storage_path,
            storage_filesystem=fs,
            failure_config=tune.FailureConfig(max_failures=opts.max_failures),
            callbacks=[_rows_callback(ctx), _console_callback(ctx)],
            # Experiment state reaches the bucket within seconds (default 5 min), so a driver
            # killed mid-sweep restores from a recent snapshot.
            sync_config=tune.SyncConfig(sync_period=5),
            # Tune's own output prints every metric of every trial: radae.sweep.console prints instead.
            verbose=0,
        ),
    )


def check_sweep_state(opts: SweepOptions) -> None:
    """Raise :class:`SweepError` when ``--resume`` has no stored sweep, or a fresh sweep's id is taken.

    Reads only the bucket (no Ray needed): :func:`run_sweep` calls it before starting Ray or
    touching the sweep's MLflow parent run.
    """
    from ray import tune

    _, fs, exp_path = tune_path(opts.storage, opts.sweep_id)
    exists = tune.Tuner.can_restore(exp_path, storage_filesystem=fs)
    if opts.resume and not exists:
        raise SweepError(f"--resume: no sweep {opts.sweep_id!r} to restore at s3://{exp_path}")
    if not opts.resume and exists:
        raise SweepError(
            f"sweep {opts.sweep_id!r} already exists at s3://{exp_path}; pass --resume or a new --sweep-id"
        )


def ctx_epochs(ctx: SweepContext) -> int:
    return ctx.base.train.epochs


def connect_ray(opts: SweepOptions) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Per-epoch results cannot carry the objective (it needs the final evaluation).
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    address = opts.ray_address or "local"
    if address == "local":
        # A local ray.init() with auth on writes a token that breaks later `ray job submit` (stack.md).
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(address="local", num_cpus=opts.local_cpus, include_dashboard=False, ignore_reinit_error=True)
    else:
        ray.init(address=address, ignore_reinit_error=True)


def run_sweep(defn: SweepDefinition, opts: SweepOptions):
    """Preflight, lease, connect, track, fit (or restore); returns the sweep's results table."""
    opts = opts.resolve(defn.name)  # storage, sweep id, study path (kept when already set)
    try:
        results.sweep_dir(opts.storage, opts.sweep_id)  # part of every row's key: fail now, not after a trial
    except results.ResultsError as exc:
        raise SweepError(str(exc)) from exc
    preflight(opts.storage, opts.tracking_uri, opts.ray_address)
    # One driver per sweep id: a second one is refused before it starts Ray or writes anything.
    lease = DriverLease(opts.storage, opts.sweep_id)
    try:
        lease.acquire()
    except LeaseError as exc:
        raise SweepError(str(exc)) from exc
    try:
        return _run_leased(defn, opts)
    finally:
        lease.release()


def _run_leased(defn: SweepDefinition, opts: SweepOptions):
    """:func:`run_sweep` once this driver holds the sweep's lease."""
    import ray

    if opts.state_dir:
        Path(opts.state_dir).mkdir(parents=True, exist_ok=True)
        (Path(opts.state_dir) / "driver.pid").write_text(str(os.getpid()))
    # Before Ray starts and before the parent MLflow run is found (and set RUNNING) or created.
    check_sweep_state(opts)
    connect_ray(opts)
    cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
    use_gpu = opts.use_gpu if opts.use_gpu is not None else cluster_gpus > 0
    res = defn.resources
    concurrency = res.concurrency(cluster_gpus, use_gpu, opts.concurrency)
    if use_gpu:
        log.info(
            "%g GPU per trial (%d trials per GPU, CUDA memory capped at %g each), %d trials at once on %g GPUs%s",
            res.gpus_per_trial,
            res.trials_per_gpu,
            res.gpus_per_trial,
            concurrency,
            cluster_gpus,
            f", {res.pack_size} configurations per trial" if res.packed else "",
        )
    else:
        log.info(
            "no GPU in this sweep: gpus_per_trial %g is validated but has no effect (no GPU share, no memory cap); "
            "%d trials at once%s",
            res.gpus_per_trial,
            concurrency,
            f", {res.pack_size} configurations per trial" if res.packed else "",
        )
    overrides = opts.config_overrides()
    tracker = Tracker(opts.tracking_uri, opts.experiment)
    parent = tracker.parent_run(opts.sweep_id, {**defn.describe(), **{f"set.{k}": v for k, v in overrides.items()}})

    view = tracker.compare_view(
        opts.sweep_id,
        parent,
        list(defn.space.params),
        compared_metrics(defn.base_config(overrides).eval.levels),
        sort_by=defn.objective.metrics[0],
        ascending=defn.objective.modes[0] == "min",
    )
    log.info("compare the trials in MLflow: %s/%s", opts.tracking_uri.rstrip("/"), view)
    storage = opts.storage.public()
    # Before any trial: one FID feature network per dataset, stored with the sweep (reused on --resume).
    fid_networks = publish_feature_nets(opts.storage, opts.sweep_id, defn.space, defn.base_config(overrides))
    ctx = SweepContext(
        sweep_id=opts.sweep_id,
        base=defn.base_config(overrides),
        space={k: _spec_dict(v) for k, v in defn.space.params.items()},
        objective=defn.objective.name,
        fid_weight=defn.objective.fid_weight,
        storage=storage,
        tracking_uri=opts.tracking_uri,
        experiment=opts.experiment,
        parent_run_id=parent,
        work_dir=str(Path(opts.work_dir).expanduser()),
        executor=opts.executor,
        num_workers=opts.num_workers,
        use_gpu=use_gpu,
        state_dir=opts.state_dir,
        gpus_per_trial=res.gpus_per_trial,
        pack_noise=res.pack_noise,
        fid_networks=fid_networks,
        smoke_test=opts.smoke_test,
    )
    tuner = build_tuner(defn, opts, ctx, concurrency)
    grid = tuner.fit()
    table = results.read_sweep(opts.storage, opts.sweep_id)
    errors = [r for r in grid if r.error is not None]
    tracker.log_metrics(parent, {"trials": table.num_rows, "errored": len(errors)})

    tracker.log_metrics(parent, headline_metrics(table.to_pandas()))  # the parent's row is not empty
    publish_report(opts.storage, opts.sweep_id, table, tracker, parent)
    tracker.end(parent, "FAILED" if errors else "FINISHED")
    return table


def publish_report(storage: StorageSettings, sweep_id: str, table: Any, tracker: Any, parent: str) -> list[str]:
    """Pareto front, sensitivity plots and the HTML report page (``report.html``,
    :mod:`radae.analysis.html_report`; the MLflow UI shows it inline) to ``reports/sweep=<id>/`` in the
    bucket and the parent run's ``report/``."""
    import tempfile

    uris = []
    fs = storage.pyarrow_fs()
    with tempfile.TemporaryDirectory(prefix="radae-report-") as tmp:
        page, _ = render_sweep(
            table.to_pandas(),
            sweep_id,
            mlflow_uri=tracker.tracking_uri,
            tracker=tracker,
            command=f"python dashboards/sweep_report.py {sweep_id}",
        )
        html = Path(tmp) / "report.html"
        html.write_text(page)
        for path in [*export_report(table, tmp), html]:
            key = storage.key("reports", f"sweep={sweep_id}", path.name, with_bucket=True)
            with fs.open_output_stream(key) as out:
                out.write(path.read_bytes())
            tracker.log_artifacts(parent, path, "report")
            uris.append(f"s3://{key}")
    log.info("sweep report: %s", ", ".join(uris))
    return uris


def _spec_dict(spec: Any) -> dict[str, Any]:
    from dataclasses import asdict

    kind = next(name for name in SPECS.names() if type(spec) is SPECS.get(name))
    fields = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(spec).items() if k != "key"}
    return {"type": kind, **fields}
