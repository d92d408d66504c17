"""Command line shared by the sweep scripts in ``sweeps/`` (each passes its definition file).

    python sweeps/alpha_modes.py --smoke-test                     # local Ray, services from env
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python sweeps/search.py \\
        --num-samples 64 --concurrency 4 --mlflow-uri http://127.0.0.1:5000
    python sweeps/search.py --sweep-id search-20261125-1200 --resume

Storage comes from ``RADAE_S3_ENDPOINT``/``RADAE_S3_BUCKET``/``RADAE_S3_PREFIX`` and the AWS
credential variables (``cluster/start_stack.sh`` writes them to ``.stack/env``), overridable by
``--endpoint``/``--bucket``/``--prefix``. ``--set key=value`` changes the base config by dotted key.
Exit status: 0 done (trials completed or pruned), 2 bad input (named), 1 some trials failed for good.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from radae.cli import set_overrides
from radae.config import ConfigError
from radae.sweep import results
from radae.sweep.definition import DefinitionError, load_definition, with_resources, with_seeds
from radae.sweep.settings import SettingsError, StorageSettings, scrub


def build_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke-test", action="store_true", help="tiny version of the sweep (the definition's smoke section)")
    p.add_argument("--definition", help="sweep definition YAML (default: the script's)")
    p.add_argument("--sweep-id", help="sweep id (default <name>-<UTC time>); required with --resume")
    p.add_argument("--resume", action="store_true", help="restore an interrupted sweep (Tuner.restore) with its Optuna state")
    p.add_argument("--num-samples", type=int, help="trials to run (default: the definition's)")
    p.add_argument("--seeds", type=int, default=None,
                   help="training seeds per configuration (default: the definition's seeds, else 1)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="trials running at once (default: cluster GPUs / gpus_per_trial on a GPU cluster, else 1)")
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPU share of one trial, 0 < x <= 1 (0.25: four trials per GPU, each capped at 1/4 of its memory)")
    p.add_argument("--pack-size", type=int, default=None,
                   help="configurations trained together in one trial with train_packed (1 = no packing)")
    p.add_argument("--pack-noise", choices=("member", "shared"), default=None,
                   help="noise streams of a pack: member (each equals training alone) or shared (faster)")
    p.add_argument("--executor", default="torch", help="torch (Ray Train TorchTrainer per trial) or direct (in the Tune trial)")
    p.add_argument("--workers", type=int, default=1, help="Ray Train workers per trial (torch executor)")
    p.add_argument("--gpu", choices=("auto", "yes", "no"), default="auto", help="a GPU per trial worker (auto: if the cluster has GPUs)")
    p.add_argument("--max-failures", type=int, default=2, help="retries of a failed trial (each resumes from its last checkpoint)")
    p.add_argument("--objective", choices=("scalar", "pareto"), help="override the definition's objective mode")
    p.add_argument("--ray-address", default=None, help="Ray cluster (default $RAY_ADDRESS, else a local 2-CPU Ray)")
    p.add_argument("--mlflow-uri", default=os.environ.get("MLFLOW_TRACKING_URI"), help="MLflow tracking URI (default $MLFLOW_TRACKING_URI)")
    p.add_argument("--experiment", default="radae-sweeps", help="MLflow experiment")
    p.add_argument("--endpoint", help="S3 endpoint URL (default $RADAE_S3_ENDPOINT)")
    p.add_argument("--bucket", help="S3 bucket (default $RADAE_S3_BUCKET)")
    p.add_argument("--prefix", help="key prefix in the bucket (default $RADAE_S3_PREFIX or radae)")
    p.add_argument("--study-db", default=os.environ.get("RADAE_OPTUNA_DB", "~/.radae/optuna.db"), help="Optuna SQLite file (absolute path: jobs run in a temporary working dir)")
    p.add_argument("--work-dir", default=os.environ.get("RADAE_WORK_DIR", "~/.radae/trials"), help="local folder of the trials' training outputs")
    p.add_argument("--state-dir", default=os.environ.get("RADAE_SWEEP_STATE_DIR"), help="folder for pid/progress files (operators, fault tests)")
    p.add_argument("--data-dir", help="dataset folder (sets data.data_dir; default $RADAE_DATA_DIR)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a base config field by dotted key")
    return p


def main(default_definition: str | Path, argv: Sequence[str] | None = None, doc: str | None = None) -> int:
    """Parse, validate (before any trial), run; returns the exit status."""
    from radae.sweep.preflight import PreflightError
    from radae.sweep.runner import SweepError, SweepOptions, run_sweep
    from radae.sweep.space import SpaceError

    parser = build_parser(Path(sys.argv[0]).name, doc)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        overrides = set_overrides(args.set, args.data_dir)
        raw_path = args.definition or default_definition
        defn = load_definition(raw_path, smoke=args.smoke_test, extra=overrides)
        defn = with_resources(defn, {"gpus_per_trial": args.gpus_per_trial, "pack_size": args.pack_size,
                                     "pack_noise": args.pack_noise}, overrides)
        defn = with_seeds(defn, args.seeds)
        if args.objective and args.objective != defn.objective.name:
            from dataclasses import replace

            from radae.sweep.objective import make_objective

            scheduler = defn.scheduler
            if scheduler and args.objective != "scalar":
                # ASHA needs one scalar metric; a two-objective search runs every trial to the end.
                print(f"note: --objective {args.objective} runs without the definition's ASHA scheduler", file=sys.stderr)
                scheduler = None
            defn = replace(defn, objective=make_objective(args.objective, defn.objective.fid_weight), scheduler=scheduler)
        if args.resume and not args.sweep_id:
            raise SettingsError("--resume needs --sweep-id (the id printed when the sweep started)")
        if not args.mlflow_uri:
            raise SettingsError("no MLflow tracking URI: pass --mlflow-uri or set MLFLOW_TRACKING_URI")
        if args.num_samples is not None and args.num_samples < 1:
            raise SettingsError(f"--num-samples must be >= 1, got {args.num_samples}")
        if args.concurrency is not None and args.concurrency < 1:
            raise SettingsError(f"--concurrency must be >= 1, got {args.concurrency}")
        storage = StorageSettings.from_env(endpoint=args.endpoint, bucket=args.bucket, prefix=args.prefix)
        sweep_id = args.sweep_id or f"{defn.name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        results.sweep_dir(storage, sweep_id)  # the id is part of every object key: checked before any trial
        opts = SweepOptions(
            sweep_id=sweep_id, storage=storage, tracking_uri=args.mlflow_uri, experiment=args.experiment,
            ray_address=args.ray_address, num_samples=args.num_samples, concurrency=args.concurrency,
            executor=args.executor, num_workers=args.workers, use_gpu={"auto": None, "yes": True, "no": False}[args.gpu],
            max_failures=args.max_failures, resume=args.resume, study_db=str(Path(args.study_db).expanduser().resolve()),
            work_dir=args.work_dir, state_dir=args.state_dir, overrides=overrides,
        )
        from radae.sweep.trainable import EXECUTORS

        EXECUTORS.get(opts.executor)
    except (DefinitionError, SpaceError, ConfigError, SettingsError, KeyError, results.ResultsError) as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return 2
    res = defn.resources
    packing = f", packs of {res.pack_size}" if res.packed else ""
    seeded = f" x {defn.seeds} seeds" if defn.seeds > 1 else ""
    print(f"sweep {sweep_id}: {defn.num_samples if not args.num_samples else args.num_samples} configurations{seeded} of {defn.name} "
          f"({defn.objective.name} objective{packing}, {res.gpus_per_trial:g} GPU per trial where GPUs exist), storage {storage}, "
          f"MLflow {args.mlflow_uri}, python {sys.executable}", flush=True)
    try:
        table = run_sweep(defn, opts)
    except (PreflightError, SweepError, results.ResultsError) as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return 2
    statuses = table.column("status").to_pylist() if table.num_rows else []
    print(f"sweep {sweep_id} done: {table.num_rows} rows in {storage.uri('results', f'sweep={sweep_id}')} "
          f"({', '.join(f'{s}: {statuses.count(s)}' for s in sorted(set(statuses)))})", flush=True)
    return 1 if "error" in statuses else 0
