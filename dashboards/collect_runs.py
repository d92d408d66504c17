"""Training runs as a sweep's table: rows and per-image values of ``python -m radae.train`` runs evaluated with
``python -m radae.evaluate``, written as Parquet for the other dashboards (``--parquet`` / ``--images``).

    python -m radae.train --epochs 60 --prior.num_modes 25 --train.seed 0 --out-dir runs/k25-s0 ...
    python -m radae.evaluate runs/k25-s0/checkpoint.pt --out runs/k25-s0/eval
    python dashboards/collect_runs.py 'runs/k*-s*' --sweep-id train60-20261203 \\
        --rows docs/results/train60-20261203.parquet --images docs/results/train60-20261203-images.parquet
    python dashboards/reproduction.py --parquet docs/results/train60-20261203.parquet \\
        --images docs/results/train60-20261203-images.parquet --out docs/reproduction-60-epochs.md

One completed row per run folder (radae.analysis.sources.load_runs): trial id = the folder's name,
``seed`` = its ``train.seed``, ``param.*`` = the settings that differ between the folders (seed and paths
aside), the evaluation's metrics with R, FID and score. ``--sweep-id`` names the set in every table
that shows it. Each folder needs ``config.json`` and ``<eval-dir>/eval.json``; ``<eval-dir>/images.parquet``
(written by radae.evaluate) gives the intervals their image level.
"""

import argparse
import glob
import sys
from pathlib import Path

from radae.analysis.sources import load_runs


def folders_of(patterns: list[str]) -> list[Path]:
    """Run folders matching the glob ``patterns`` (files such as logs skipped), in order, each once."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_dir())
        if not matches:
            raise ValueError(f"{pattern}: no run folder matches")
        found += [m for m in matches if m not in found]
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders or glob patterns of them")
    p.add_argument("--sweep-id", required=True, help="the id these rows carry (a name for this set of runs)")
    p.add_argument("--eval-dir", default="eval", help="each run's evaluation folder, relative to it (default eval)")
    p.add_argument("--rows", required=True, help="Parquet file for the rows")
    p.add_argument("--images", help="Parquet file for the per-image values")
    args = p.parse_args(argv)
    try:
        rows, images = load_runs(folders_of(args.runs), args.sweep_id, args.eval_dir)
        if args.images and images is None:
            raise ValueError(f"a run lacks {args.eval_dir}/images.parquet: evaluate it again with radae.evaluate")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, frame in ((args.rows, rows), (args.images, images)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path, index=False)
    params = sorted(c.removeprefix("param.") for c in rows if c.startswith("param."))
    print(
        f"wrote {len(rows)} rows to {args.rows}"
        + (f" and {len(images)} per-image values to {args.images}" if args.images else "")
    )
    print(f"settings that differ: {', '.join(params) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
