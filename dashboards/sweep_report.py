"""A stored sweep as one self-contained HTML page (radae/analysis/html_report.py): open it from disk, no network.

    source .stack/env
    python dashboards/sweep_report.py alpha-modes-20261125-101500                  # rows from S3, runs from MLflow
    python dashboards/sweep_report.py --parquet rows.parquet --out runs/report.html  # a copied table

Headline (best configuration per objective, trials completed/pruned/failed, wall time), Pareto front
(hover: trial and configuration), sensitivity per searched parameter with 95% CIs across seeds,
the paper's tables 1-3 in both MS-SSIMs (their rows the sweep trained; MNIST only), attack grids of the best and worst trial (from their
local out dirs or MLflow artifacts), and a link per trial to its MLflow run (needs --mlflow-uri or
$MLFLOW_TRACKING_URI, or rows that carry mlflow_run_id). The sweep itself writes the same page to
s3://BUCKET/PREFIX/reports/sweep=<id>/report.html and logs it on its parent MLflow run.
"""

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from radae.analysis.html_report import render_sweep
from radae.analysis.sources import DEFAULT_EXPERIMENT, DEFAULT_STUDY_DB, load_table, open_tracker, study_link


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_id", nargs="?", help="sweep id (rows read from $RADAE_S3_* storage)")
    p.add_argument("--parquet", help="read the rows from this Parquet file instead")
    p.add_argument(
        "--out", help="HTML file to write, or a folder to write report.html in (default runs/sweep-report/<sweep>.html)"
    )
    p.add_argument(
        "--mlflow-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="MLflow server for run links and attack grids (default $MLFLOW_TRACKING_URI; '' for none)",
    )
    p.add_argument(
        "--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment of the sweep (default %(default)s)"
    )
    p.add_argument(
        "--optuna-url",
        default=os.environ.get("RADAE_OPTUNA_DASHBOARD"),
        help="optuna-dashboard URL; the report links its page of the sweep's study (default $RADAE_OPTUNA_DASHBOARD)",
    )
    p.add_argument(
        "--study-db",
        default=os.environ.get("RADAE_OPTUNA_DB") or DEFAULT_STUDY_DB,
        help="Optuna SQLite file holding the sweep's study (default $RADAE_OPTUNA_DB, else %(default)s)",
    )
    args = p.parse_args(argv)
    t0 = time.time()
    try:
        df = load_table(args.sweep_id, args.parquet)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sweep_id = args.sweep_id or (
        str(df["sweep_id"].iloc[0]) if "sweep_id" in df and len(df) else Path(args.parquet).stem
    )
    tracker = open_tracker(args.mlflow_uri, args.experiment)
    command = "python dashboards/sweep_report.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    optuna_url = study_link(args.optuna_url, args.study_db, sweep_id)
    page, counts = render_sweep(
        df, sweep_id, mlflow_uri=args.mlflow_uri, tracker=tracker, optuna_url=optuna_url, command=command
    )
    out = Path(args.out or f"runs/sweep-report/{sweep_id}.html")
    if out.is_dir() or (args.out or "").endswith("/"):
        out = out / "report.html"  # a folder: the report inside it
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    print(
        f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, {len(df)} rows, {counts['links']} run links, {counts['grids']} grids) in {time.time() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
