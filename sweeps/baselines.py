"""The paper's comparison: the robust GMM autoencoder and its six baselines, trained and evaluated alike.

Definition: ``sweeps/baselines.yaml`` (a grid over ``model.name``; the base fixes the dataset,
epochs and evaluation, so every model gets exactly the same protocol). Examples::

    python sweeps/baselines.py --smoke-test                       # ~1-2 min on 2 CPU cores
    python sweeps/baselines.py --data-dir /path/to/mnist --set train.epochs=5
    python sweeps/baselines.py --models rae vae avae --out runs/baselines
    python sweeps/baselines.py --s3                               # rows to S3 ($RADAE_S3_* settings)
    python sweeps/baselines.py --ray --smoke-test [radae.sweep.cli options]   # the same grid on Ray

Without ``--ray`` the models run one after the other in this process: ``radae.train.train``, then
``radae.evaluate.evaluate`` on the checkpoint, then one Parquet row per model in the schema of
every radae sweep (:func:`radae.sweep.trial.trial_row`: ``config.*`` from ``cfg.flat()``,
``param.model.name``, ``metric.*`` = the final metrics every sweep trial gets from
:func:`radae.sweep.trial.train_and_evaluate`: the evaluation metrics, ``robustness``, ``fid``, ``score``,
``epochs_trained``, the timings and ``evaluated``), at ``OUT/results/sweep=<id>/trial=<model>.parquet`` (the S3 layout, locally) or, with
``--s3``, through :func:`radae.store.results.write_row`. The Lipschitz-VAE row also carries its
certified bound on the max-damage L2 at each lambda (``certified_maxdmg_l2_recx_recxa_l<lambda>``).

It ends by printing a table laid out like the paper's: models as rows; latent-attack MS-SSIM
(x_t, recon x_a) and max-damage MS-SSIM (recon x, recon x_a) at each lambda; FID (the feature
network is named in the header), with the paper's MNIST numbers beside where the paper has them.
Exit status: 0 all models done, 1 some failed (their rows have status error), 2 bad input.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from radae.analysis import paper

DEFINITION = Path(__file__).with_suffix(".yaml")
# The paper's MNIST row per model name (appendix table 1, radae.analysis.paper): the baselines and, for
# rae, the robust GMM AE at K 10, alpha 0.95.
PAPER_MNIST = {
    **{model: row for row in paper.TABLE1 for model, where in [paper.TABLE1_MATCH[row.model]] if not where},
    "rae": paper.OURS,
}


# Options shared with the Ray sweep CLI (generated from radae.sweep.options.SweepOptions, help and defaults there).
SHARED = ("smoke_test", "sweep_id", "data_dir", "overrides")


def _own_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--models", nargs="+", help="subset of the grid's models (default: all)")
    p.add_argument("--out", default="runs/baselines", help="local folder: training runs and results/ Parquet rows")
    p.add_argument("--s3", action="store_true", help="write rows to S3 (StorageSettings.from_env) instead of --out")
    p.add_argument(
        "--ray", action="store_true", help="run the grid on Ray via radae.sweep.cli (every other option goes there)"
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    """This script's own options, plus the sweep options it shares with ``radae.sweep.cli`` (sweep id default
    here: baselines[-smoke]-<UTC time>)."""
    from radae.sweep.cli import add_options

    p = argparse.ArgumentParser(
        prog="sweeps/baselines.py",
        description=__doc__,
        parents=[_own_parser()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(p, SHARED)
    return p


def run_model(cfg, data, objective, progress: bool = True, data_seconds: float = 0.0) -> dict[str, float]:
    """Train ``cfg``'s model, evaluate its checkpoint; its final metrics, the keys of every sweep trial's
    (:func:`radae.sweep.trial.train_and_evaluate`). ``data_seconds``: loading the data (once for all models)."""
    from radae.sweep.trial import Startup, train_and_evaluate
    from radae.train import train
    from radae.trainer import resolve_device

    (outcome,) = train_and_evaluate(
        [cfg],
        data,
        objective,
        device=resolve_device(cfg.train.device),
        startup=Startup(data_seconds=data_seconds),
        train=lambda: [train(cfg, data=data, progress=progress)],
    )
    return outcome.final


def write_local(out: Path, row: Mapping[str, Any]) -> Path:
    """The row as ``out/results/sweep=<id>/trial=<trial>.parquet`` (S3 layout), replacing any earlier one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from radae.store.settings import scrub

    path = out / "results" / f"sweep={row['sweep_id']}" / f"trial={row['trial_id']}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.Table.from_pylist([scrub(dict(row))]), tmp)
    tmp.replace(path)
    return path


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) and math.isfinite(value) else "-"


def format_table(rows: Sequence[Mapping[str, Any]], levels: Sequence[float]) -> str:
    """Paper-style table: models x (latent MS-SSIM per lambda, max-damage MS-SSIM per lambda, FID)."""
    from radae.objective import FID_KEYS, LATENT_KEY, MAXDAMAGE_KEY, level_tag

    tags = [level_tag(lv) for lv in levels]
    fid_key = next((k for k in FID_KEYS if any(f"metric.{k}" in r for r in rows)), FID_KEYS[-1])
    header = (
        f"{'model':<14} | latent MS-SSIM(x_t, rec x_a) l={'/'.join(tags)} (lower better) | "
        f"max-damage MS-SSIM(rec x, rec x_a) l={'/'.join(tags)} (higher better) | {fid_key}"
    )
    lines = [header, "-" * len(header)]
    paper_levels = tuple(levels) == (1.0, 3.0, 5.0)
    for r in rows:
        name = r["trial_id"]
        if r.get("status") != "completed":
            lines.append(f"{name:<14} | {r.get('status')}: {r.get('error', '')[:90]}")
            continue
        lat = " / ".join(_fmt(r.get(f"metric.{LATENT_KEY.format(level=t)}")) for t in tags)
        dmg = " / ".join(_fmt(r.get(f"metric.{MAXDAMAGE_KEY.format(level=t)}")) for t in tags)
        lines.append(f"{name:<14} | {lat:<55} | {dmg:<66} | {_fmt(r.get(f'metric.{fid_key}'))}")
        if paper_levels and name in PAPER_MNIST and r.get("config.data.name") == "mnist":
            ref = PAPER_MNIST[name]
            lat_p = " / ".join(f"{v:.2f}" for v in ref.latent)
            dmg_p = " / ".join(f"{v:.2f}" for v in ref.max_damage)
            lines.append(f"{'  (paper)':<14} | {lat_p:<55} | {dmg_p:<66} | {ref.fid:.2f} (Inception)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    own, rest = _own_parser().parse_known_args(argv)
    if own.ray:  # every option but this script's own goes to the Ray sweep CLI, which checks them
        from radae.sweep.cli import main as ray_main

        return ray_main(DEFINITION, rest, doc=__doc__)
    args, rest = build_parser().parse_known_args(argv)
    if rest:
        print(f"error: unrecognised arguments {rest} (they are only accepted with --ray)", file=sys.stderr)
        return 2

    import torch

    from radae.cli import set_overrides
    from radae.config import ConfigError
    from radae.data import DataError, load_dataset
    from radae.store import results
    from radae.store.fidnet import fid_columns
    from radae.store.preflight import check_storage
    from radae.store.settings import SettingsError, StorageSettings, scrub
    from radae.sweep.cli import option_values
    from radae.sweep.definition import DefinitionError, load_definition
    from radae.sweep.options import default_of
    from radae.sweep.seeds import seed_columns
    from radae.sweep.trial import Member, trial_row
    from radae.trainer import resolve_device

    torch.set_num_threads(1)
    try:
        shared = {**{name: default_of(name) for name in SHARED}, **option_values(args)}
        smoke = shared["smoke_test"]
        overrides = set_overrides(shared["overrides"], shared["data_dir"])
        defn = load_definition(DEFINITION, smoke=smoke, extra=overrides)
        base = defn.base_config(overrides)
        models = [p["model.name"] for p in defn.space.grid_points()]
        unknown = sorted(set(args.models or []) - set(models))
        if unknown:
            raise ConfigError(f"--models {unknown} are not in the grid ({', '.join(models)})")
        models = [m for m in models if not args.models or m in args.models]
        storage = StorageSettings.from_env() if args.s3 else None
        # Before any training: the id is part of every row's key, and the bucket must answer.
        sweep_id = (
            shared["sweep_id"]
            or f"{defn.name}{'-smoke' if smoke else ''}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        )
        results.check_id("sweep id", sweep_id)
        problem = check_storage(storage) if storage else None
        if problem:
            raise SettingsError(problem)
        t0 = time.time()
        data = load_dataset(base.data, resolve_device(base.train.device))
        data_seconds = time.time() - t0
        # Every row's config records the folder actually read (the search order's pick when none was named).
        base = defn.base_config({**overrides, "data.data_dir": data.source})
    except (DefinitionError, ConfigError, SettingsError, DataError, results.ResultsError) as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return 2
    out = Path(args.out)
    print(
        f"sweep {sweep_id}: {', '.join(models)} on {base.data.name} ({data}), {base.train.epochs} epoch(s) each",
        flush=True,
    )
    rows = []
    for name in models:
        cfg = defn.space.to_config(base, {"model.name": name})
        cfg = _with_out_dir(cfg, out / sweep_id / name)
        member = Member(
            name, cfg, {"model.name": name}, {**seed_columns({"model.name": name}, cfg.train.seed), **fid_columns(None)}
        )
        started, error = time.time(), None
        try:
            final = run_model(cfg, data, defn.objective, data_seconds=data_seconds)
        except Exception as exc:  # one failing model must not hide the others' rows
            traceback.print_exc()
            final, error = {}, f"{type(exc).__name__}: {exc}"
        row = trial_row(
            sweep_id=sweep_id,
            member=member,
            final=final,
            started=started,
            executor="sequential",
            error=error,
            extra={"smoke_test": smoke},
        )
        where = results.write_row(storage, row) if storage else write_local(out, row)
        print(f"{name}: {row['status']} in {row['wall_seconds']:.0f}s; row {where}", flush=True)
        rows.append(row)
    print()
    print(format_table(rows, base.eval.levels))
    return 0 if all(r["status"] == "completed" for r in rows) else 1


def _with_out_dir(cfg, path: Path):
    from radae.config import apply_overrides

    return apply_overrides(cfg, {"train.out_dir": str(path)})


if __name__ == "__main__":
    sys.exit(main())
