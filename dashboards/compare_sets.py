"""Two sets of rows that differ in budget (e.g. the same configurations trained 10 and 60 epochs), configuration by
configuration: each metric in A, in B, and B - A with a 95% interval over seeds and images.

    python dashboards/compare_sets.py --a docs/results/train10-20261203.parquet \\
        --a-images docs/results/train10-20261203-images.parquet --b docs/results/train60-20261203.parquet \\
        --b-images docs/results/train60-20261203-images.parquet --by prior.num_modes --md out.md

The tables of radae.analysis refuse rows of different budgets in one table (like with like); this is the one
place they meet, and only as a difference of the same configuration: the rows of A and B must agree in every
evaluation setting (images, starts, attack steps, FID samples and eval seed, so the attacked images are the
same and the difference is paired by image), and configurations are matched on the ``--by`` settings, which must
name every setting that differs within a set (else it stops: a group would average several configurations).
Intervals: radae.analysis.intervals.difference_interval (seeds of each side resampled apart, images
resampled once per replicate for both sides when both have per-image values).
"""

import argparse
import sys

import pandas as pd

from radae.analysis import intervals
from radae.analysis.aggregate import completed, searched_params, value_text
from radae.analysis.samples import samples
from radae.analysis.sources import load_images, load_table
from radae.analysis.tables import LIKE_WITH_LIKE, markdown

# Column -> metric: clean reconstruction, both attacks at lambda 3 / 5 (paper formula), R, FID.
METRICS = {
    "clean MS-SSIM(x, rec x)": "metric.clean_msssim_paper_x_recx_mean",
    "MD λ=3": "metric.max_damage_msssim_paper_recx_recxa_l3_mean",
    "MD λ=5": "metric.max_damage_msssim_paper_recx_recxa_l5_mean",
    "LAT λ=3": "metric.latent_msssim_paper_xt_recxa_l3_mean",
    "LAT λ=5": "metric.latent_msssim_paper_xt_recxa_l5_mean",
    "R paper formula": "metric.robustness_paper",
    "FID classifier": "metric.fid_classifier_mean",
}


def check_same_protocol(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """ValueError naming the first evaluation setting in which the two sets differ (training settings may)."""
    for col in LIKE_WITH_LIKE:
        if not col.startswith("config.eval.") or col not in a or col not in b:
            continue
        va, vb = {value_text(v) for v in a[col]}, {value_text(v) for v in b[col]}
        if va != vb:
            raise ValueError(f"A and B differ in {col} ({', '.join(sorted(va))} vs {', '.join(sorted(vb))})")


def check_one_configuration(rows: pd.DataFrame, cols: list[str], name: str) -> None:
    """ValueError when a ``--by`` group of ``rows`` holds runs whose searched settings (``param.*``) differ: they
    are different configurations, and averaging them would compare a mixture."""
    others = [
        c for c in searched_params(rows) if c.removeprefix("param.") not in {x.removeprefix("config.") for x in cols}
    ]
    for key, group in rows.groupby(cols, sort=True):
        mixed = [c.removeprefix("param.") for c in others if group[c].astype(str).nunique() > 1]
        if mixed:
            at = " ".join(f"{c.removeprefix('config.')}={value_text(v)}" for c, v in zip(cols, key, strict=True))
            raise ValueError(
                f"set {name} has several configurations at {at}: they differ in {', '.join(mixed)} (add to --by)"
            )


def compare(
    a: pd.DataFrame, b: pd.DataFrame, by: list[str], a_images=None, b_images=None, digits: int = 3
) -> pd.DataFrame:
    """One row per configuration (values of ``by``) present in both sets: per :data:`METRICS` column
    ``A -> B, B - A [95%]``."""
    a, b = completed(a), completed(b)
    check_same_protocol(a, b)
    cols = [f"config.{k}" for k in by]
    missing = [c for c in cols if c not in a or c not in b]
    if missing:
        raise ValueError(f"--by {missing[0].removeprefix('config.')}: not a setting of both sets")
    check_one_configuration(a, cols, "A")
    check_one_configuration(b, cols, "B")
    records = []
    for key, rows_b in b.groupby(cols, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows_a = a[(a[cols] == pd.Series(key, index=cols)).all(axis=1)]
        if rows_a.empty:
            continue
        label = " ".join(f"{k}={value_text(v)}" for k, v in zip(by, key, strict=True))
        record = {"configuration": label, "n A / B": f"{len(rows_a)} / {len(rows_b)}"}
        for column, metric in METRICS.items():
            if metric not in rows_a or metric not in rows_b:
                record[column] = "—"
                continue
            sa, sb = samples(rows_a, metric, a_images), samples(rows_b, metric, b_images)
            diff = intervals.difference_interval(sa, sb, metric)
            places = 1 if "fid" in metric else digits
            record[column] = (
                f"{sa.seed_means.mean():.{places}f} → {sb.seed_means.mean():.{places}f}, {intervals.fmt(diff, places, signed=True)}"
            )
        records.append(record)
    if not records:
        raise ValueError(f"no configuration (by {', '.join(by)}) is in both sets")
    return pd.DataFrame.from_records(records)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="rows of set A (Parquet)")
    p.add_argument("--b", required=True, help="rows of set B (Parquet)")
    p.add_argument("--a-images", help="per-image values of A (Parquet)")
    p.add_argument("--b-images", help="per-image values of B (Parquet)")
    p.add_argument("--by", nargs="+", required=True, help="settings that name a configuration, e.g. prior.num_modes")
    p.add_argument("--md", help="also write the table here (Markdown)")
    args = p.parse_args(argv)
    try:
        a, b = load_table(parquet=args.a), load_table(parquet=args.b)
        a_images = load_images([], [args.a_images] if args.a_images else [])
        b_images = load_images([], [args.b_images] if args.b_images else [])
        table = compare(a, b, args.by, a_images, b_images)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = (
        "Cells: mean over A's runs → mean over B's runs, B - A [95% interval over seeds and images"
        + (", paired by image" if a_images is not None and b_images is not None else "")
        + "]; MS-SSIMs are the paper's formula (MD: max damage, higher = more robust; LAT: latent, lower = more"
        " robust), FID on classifier features (lower = better).\n\n" + markdown(table)
    )
    print(text)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
