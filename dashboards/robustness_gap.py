"""The factor table from stored sweeps: rewrites the generated block of docs/robustness-gap.md.

    python dashboards/robustness_gap.py --parquet docs/results/reproduction-20261130.parquet \\
        --parquet docs/results/gap-eps-20261201.parquet ... --plot docs/robustness-gap-factors.png
    source .stack/env; python dashboards/robustness_gap.py gap-eps-20261201 ...   # rows from S3
    python dashboards/robustness_gap.py --parquet rows.parquet --images images.parquet  # per-image values too

Sweep ids read their per-image tables from the bucket too (radae.store.results.read_images); without
per-image values the intervals are the parametric fallback of radae.analysis.intervals.

The block between ``<!-- factor-table:start -->`` and ``<!-- factor-table:end -->`` is replaced
(radae.analysis.factors.factor_markdown); the rest of the page is prose and stays. ``--block NAME`` picks
another block, ``<!-- NAME:start -->`` ... ``<!-- NAME:end -->``, so one page can hold factor tables of
different budgets (which never share a table)::

    python dashboards/robustness_gap.py --block factor-table-60 --parquet docs/results/train60-20261203.parquet \
        --images docs/results/train60-20261203-images.parquet --plot docs/robustness-gap-factors-60.png Rows of several sweeps
share the table only when their budget, protocol and FID network agree; otherwise it exits 2 naming
the column.
"""

import argparse
import os
import shlex
import sys
from pathlib import Path

import pandas as pd

from radae.analysis.factors import differences, factor_markdown
from radae.analysis.sources import load_images, load_table

BLOCK = "factor-table"
# Panels of the forest plot: columns of radae.analysis.factors.DIFFERENCES.
PANELS = ("R paper formula", "MD paper λ=3", "MD paper λ=5")


def forest_plot(df: pd.DataFrame, path: Path, images: pd.DataFrame | None = None) -> None:
    """One panel per :data:`PANELS` column: each factor's B - A with its 95% interval (seeds and images), 0 marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diffs = differences(df, images=images)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS) + 3, 0.42 * len(diffs) + 1.6), sharey=True)
    ys = list(range(len(diffs)))[::-1]
    for ax, col in zip(axes, PANELS, strict=True):
        for y, d in zip(ys, diffs, strict=True):
            iv = d.effects[col]
            err = [[iv.estimate - iv.low], [iv.high - iv.estimate]] if iv.low == iv.low else None
            ax.errorbar(iv.estimate, y, xerr=err, fmt="o", color="C3" if iv.excludes_zero else "C0")
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(f"{col}: B - A (higher = more robust)", fontsize=9)
    axes[0].set_yticks(ys, [d.factor.label for d in diffs], fontsize=8)
    fig.suptitle("Training factors at K 10, alpha 0.95 (red: 95% interval excludes 0)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def replace_block(text: str, block: str, name: str = BLOCK) -> str:
    """``text`` with the part between the ``<!-- name:start -->`` and ``<!-- name:end -->`` markers replaced by
    ``block``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, sep, rest = text.partition(start)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise ValueError(f"the page has no {start} ... {end} block to replace")
    return f"{head}{start}\n{block}\n{end}{tail}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_id", nargs="*", help="sweep id(s) (rows read from $RADAE_S3_* storage)")
    p.add_argument("--parquet", action="append", default=[], help="read rows from this Parquet file (repeatable)")
    p.add_argument(
        "--images", action="append", default=[], help="per-image values (Parquet, radae.store.images) (repeatable)"
    )
    p.add_argument("--page", default="docs/robustness-gap.md", help="page whose factor-table block is rewritten")
    p.add_argument("--block", default=BLOCK, help=f"name of the page's block to rewrite (default {BLOCK})")
    p.add_argument(
        "--plot", help="also draw the forest plot here (PNG; linked from the block, path relative to the page)"
    )
    args = p.parse_args(argv)
    command = "python dashboards/robustness_gap.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    page = Path(args.page)
    try:
        if not args.sweep_id and not args.parquet:
            raise ValueError("give a sweep id or --parquet FILE")
        if not page.is_file():
            raise ValueError(f"no page {page}")
        frames = [load_table(sweep_id=s) for s in args.sweep_id] + [load_table(parquet=f) for f in args.parquet]
        df = pd.concat(frames, ignore_index=True)
        images = load_images(args.sweep_id, args.images)
        figure = os.path.relpath(args.plot, page.parent) if args.plot else None
        text = replace_block(page.read_text(), factor_markdown(df, command, figure, images), args.block)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        forest_plot(df, Path(args.plot), images)
    page.write_text(text)
    print(f"wrote the {args.block} block of {page} ({len(df)} rows)" + (f" and {args.plot}" if args.plot else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
