"""Pareto front and sensitivity plots of a stored sweep (reads its Parquet rows from S3).

    source .stack/env
    python dashboards/plot_sweep.py alpha-modes-20261125-101500 --out runs/report
    python dashboards/plot_sweep.py --parquet rows.parquet --out runs/report   # a table copied elsewhere

Writes pareto.csv, pareto.parquet, pareto.png and sensitivity.png (radae/analysis/report.py) and
prints the Pareto front.
"""

import argparse
import sys

from radae.analysis.report import FID, ROBUST, export_report, pareto_table
from radae.analysis.sources import load_table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_id", nargs="?", help="sweep id (rows read from $RADAE_S3_* storage)")
    p.add_argument("--parquet", help="read the rows from this Parquet file instead")
    p.add_argument("--out", default="runs/sweep-report", help="output folder")
    args = p.parse_args(argv)
    try:
        table = load_table(args.sweep_id, args.parquet)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if table.empty:
        print(f"error: no rows in {args.parquet or args.sweep_id!r}", file=sys.stderr)
        return 2
    files = export_report(table, args.out)
    front = pareto_table(table)
    cols = ["trial_id", ROBUST, FID] + [c for c in front.columns if c.startswith("param.")]
    print(front[cols].to_string(index=False))
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
