"""Sweep reports from the Parquet table: the Pareto front (robustness vs FID) and sensitivity plots.

    export_report(table, out_dir)  ->  pareto.csv, pareto.parquet, pareto.png, sensitivity.png

``pareto.*`` hold the completed trials that no other trial beats in both robustness (higher) and
FID (lower), :func:`radae.objective.pareto_front`; ``pareto.png`` shows each configuration's
mean over seeds with 95% interval whiskers (clipped to the metric's range, :func:`metric_bounds`),
labelled, the front of those means dotted and the single runs faint; ``sensitivity.png`` plots robustness and FID against each searched parameter
(for the alpha/modes study: the paper's tables 2 and 3 as curves). :func:`run_sweep` uploads the
files to ``s3://BUCKET/PREFIX/reports/sweep=<id>/`` and logs them on the sweep's parent MLflow run;
``dashboards/plot_sweep.py`` makes them for any stored sweep.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from radae.analysis.aggregate import LABEL, summarize
from radae.objective import pareto_front

ROBUST, FID = "metric.robustness", "metric.fid"


def metric_bounds(metric: str) -> tuple[float, float]:
    """The range a metric's values can take (intervals are drawn clipped to it): MS-SSIMs and R in [0, 1],
    FIDs >= 0, anything else unbounded."""
    name = metric.removeprefix("metric.")
    if name.startswith("robustness") or "msssim" in name:
        return 0.0, 1.0
    if name.startswith("fid"):
        return 0.0, math.inf
    return -math.inf, math.inf


def completed(table: Any):
    """The completed trials with both objectives, as a pandas DataFrame."""
    df = table.to_pandas() if hasattr(table, "to_pandas") else table
    if df.empty or ROBUST not in df or FID not in df:
        return df.iloc[0:0]
    return df[(df["status"] == "completed") & df[ROBUST].notna() & df[FID].notna()].reset_index(drop=True)


def pareto_table(table: Any):
    """Rows of the Pareto front, sorted by FID."""
    df = completed(table)
    idx = pareto_front(list(zip(df[ROBUST], df[FID], strict=True))) if len(df) else []
    return df.iloc[idx].sort_values(FID).reset_index(drop=True)


def export_report(table: Any, out_dir: str | Path) -> list[Path]:
    """Write the Pareto front (CSV, Parquet, PNG) and the sensitivity plot; returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df, front = completed(table), pareto_table(table)
    files = [out / "pareto.csv", out / "pareto.parquet", out / "pareto.png", out / "sensitivity.png"]
    front.to_csv(files[0], index=False)
    front.to_parquet(files[1], index=False)

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.scatter(df[FID], df[ROBUST], s=10, c="0.75", label="single runs")
    if len(df):
        # one point per configuration: its mean over seeds, 95% interval whiskers clipped to the metric's range
        means = summarize(df, [ROBUST, FID])
        for i, (_, c) in enumerate(means.iterrows()):
            err = []
            for m in (FID, ROBUST):
                lo, hi = metric_bounds(m)
                mean = c[f"{m}:mean"]
                low, high = min(max(c[f"{m}:ci_low"], lo), hi), min(max(c[f"{m}:ci_high"], lo), hi)
                err.append([[0 if math.isnan(low) else mean - low], [0 if math.isnan(high) else high - mean]])
            ax.errorbar(
                c[f"{FID}:mean"], c[f"{ROBUST}:mean"], xerr=err[0], yerr=err[1], fmt="o", c=f"C{i % 10}", capsize=3
            )
            ax.annotate(
                str(c[LABEL]),
                (c[f"{FID}:mean"], c[f"{ROBUST}:mean"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
        idx = pareto_front(zip(means[f"{ROBUST}:mean"], means[f"{FID}:mean"], strict=True))
        fm = means.iloc[idx].sort_values(f"{FID}:mean")
        ax.plot(fm[f"{FID}:mean"], fm[f"{ROBUST}:mean"], ":", c="C3", label="Pareto front of the configuration means")
    ax.set_xlabel("FID (lower is better)")
    ax.set_ylabel("robustness R (higher is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(files[2], dpi=120)
    plt.close(fig)

    params = sorted(c for c in df.columns if c.startswith("param."))
    fig, axes = plt.subplots(2, max(len(params), 1), figsize=(3.2 * max(len(params), 1), 5.5), squeeze=False)
    for j, param in enumerate(params):
        for i, (metric, label) in enumerate(((ROBUST, "robustness"), (FID, "FID"))):
            ax = axes[i][j]
            numeric = df[param].map(lambda v: isinstance(v, int | float))
            if len(df) and numeric.all():
                ax.scatter(df[param], df[metric], s=12, c="0.5")
                if df[param].nunique() <= 8:  # a grid: the mean curve (paper tables 2-3)
                    means = df.groupby(param)[metric].mean()
                    ax.plot(means.index, means.values, "o-", c="C0")
                if param.endswith(("_mult",)):
                    ax.set_xscale("log")
            else:
                means = df.groupby(df[param].astype(str))[metric].mean() if len(df) else None
                if means is not None:
                    ax.bar(means.index, means.values)
            ax.set_xlabel(param.removeprefix("param."))
            ax.set_ylabel(label)
    fig.tight_layout()
    fig.savefig(files[3], dpi=110)
    plt.close(fig)
    return files
