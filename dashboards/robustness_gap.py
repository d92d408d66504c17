"""Issue 10's factor table from stored sweeps: rewrites the generated block of docs/robustness-gap.md.

    python dashboards/robustness_gap.py --parquet docs/results/reproduction-20261130.parquet \\
        --parquet docs/results/gap-factors-20261201.parquet ...      # stored rows
    source .stack/env; python dashboards/robustness_gap.py gap-eps-20261201 ...   # rows from S3

The block between ``<!-- factor-table:start -->`` and ``<!-- factor-table:end -->`` is replaced
(radae.sweep.factors.factor_markdown); the rest of the page is prose and stays. Rows of several sweeps
share the table only when their budget, protocol and FID network agree; otherwise it exits 2 naming
the column.
"""

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from radae.sweep.factors import factor_markdown
from radae.sweep.report import load_table

START, END = "<!-- factor-table:start -->", "<!-- factor-table:end -->"


def replace_block(text: str, block: str) -> str:
    """``text`` with the part between the START and END markers replaced by ``block``."""
    head, sep, rest = text.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"the page has no {START} ... {END} block to replace")
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_id", nargs="*", help="sweep id(s) (rows read from $RADAE_S3_* storage)")
    p.add_argument("--parquet", action="append", default=[], help="read rows from this Parquet file (repeatable)")
    p.add_argument("--page", default="docs/robustness-gap.md", help="page whose factor-table block is rewritten")
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
        text = replace_block(page.read_text(), factor_markdown(pd.concat(frames, ignore_index=True), command))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    page.write_text(text)
    print(f"wrote the factor table of {page} ({sum(len(f) for f in frames)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
