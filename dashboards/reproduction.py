"""The paper's tables 1-4 from a stored sweep, radae beside the paper: writes docs/reproduction.md.

    source .stack/env
    python dashboards/reproduction.py alpha-modes-20261125-101500            # rows from S3 ($RADAE_S3_*)
    python dashboards/reproduction.py --parquet rows.parquet --out /tmp/r.md  # a copied table
    python dashboards/reproduction.py --parquet a.parquet --parquet b.parquet  # several sweeps in one page
    python dashboards/reproduction.py --parquet rows.parquet --images images.parquet  # per-image values too

Rows of several sweeps share the page only when they have one budget, protocol and FID network
(radae.analysis.tables.check_comparable); otherwise it stops and names the column that differs.

Values are mean [95% interval] over seeds and images (radae/analysis/intervals.py: from the per-image
tables of the sweep ids or --images files, else parametric from each trial's mean and std), in both
MS-SSIMs (the paper's formula and the standard one); missing configurations read "not run"; every FID names its feature network.
The page records the budget (epochs, device, seeds, wall time) and the command that regenerates it.
"""

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from radae.analysis.sources import load_images, load_table
from radae.analysis.tables import reproduction_markdown


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_id", nargs="*", help="sweep id(s) (rows read from $RADAE_S3_* storage)")
    p.add_argument("--parquet", action="append", default=[], help="read rows from this Parquet file (repeatable)")
    p.add_argument(
        "--images", action="append", default=[], help="per-image values (Parquet, radae.store.images) (repeatable)"
    )
    p.add_argument(
        "--out", default="docs/reproduction.md", help="Markdown file to write (default docs/reproduction.md)"
    )
    args = p.parse_args(argv)
    command = "python dashboards/reproduction.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    try:
        if not args.sweep_id and not args.parquet:
            raise ValueError("give a sweep id or --parquet FILE")
        frames = [load_table(sweep_id=s) for s in args.sweep_id] + [load_table(parquet=f) for f in args.parquet]
        images = load_images(args.sweep_id, args.images)
        text = reproduction_markdown(pd.concat(frames, ignore_index=True), command, images)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out} ({sum(len(f) for f in frames)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
