"""Robustness and clean reconstruction against epochs, per configuration: the probe's curves in the sweep report.

Every training epoch the robustness probe (radae/probe.py) adds ``probe_*`` metrics to the trial's
``metrics.jsonl`` line (and to MLflow, per epoch). :func:`load_curves` reads them back for the completed
trials of a sweep from their run folders (``config.train.out_dir``/metrics.jsonl, where the sweep's
workers wrote them; a trial whose folder is not on this machine is left out, its curves stay in
MLflow). :func:`curves_figure` draws, per configuration (``config_label``), the mean over its seeds
of probe R (paper's MS-SSIM; higher = more robust) and of the clean MS-SSIM(x, rec x) (paper's
MS-SSIM; higher = better reconstruction) against the epoch; :func:`section_html` is the report's
section.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from radae.analysis.aggregate import LABEL, completed, with_config

# Panel title -> per-epoch metric of radae/probe.py.
PANELS = {
    "probe R (paper MS-SSIM), higher = more robust": "probe_robustness_paper",
    "clean MS-SSIM(x, rec x) (paper), higher = better": "probe_clean_msssim_paper_x_recx",
}
COLUMNS = ["trial_id", LABEL, "epoch", "metric", "value"]


def read_history(folder: str | Path) -> list[dict[str, Any]]:
    """The epochs of a run folder's ``metrics.jsonl`` (empty when it is not there)."""
    path = Path(folder) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Long table ``trial_id, config_label, epoch, metric, value`` of the :data:`PANELS` metrics of the
    completed trials whose run folder is on this machine."""
    rows = with_config(completed(df)) if len(df) else df
    records = []
    if "config.train.out_dir" not in rows:
        return pd.DataFrame(columns=COLUMNS)
    for _, row in rows.iterrows():
        if not isinstance(row["config.train.out_dir"], str):
            continue
        for epoch in read_history(row["config.train.out_dir"]):
            records += [
                {
                    "trial_id": row["trial_id"],
                    LABEL: row[LABEL],
                    "epoch": epoch["epoch"],
                    "metric": m,
                    "value": epoch[m],
                }
                for m in PANELS.values()
                if m in epoch
            ]
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Per configuration, metric and epoch: the mean over the configuration's seeds and how many there were."""
    if curves.empty:
        return pd.DataFrame(columns=[LABEL, "metric", "epoch", "mean", "seeds"])
    grouped = curves.groupby([LABEL, "metric", "epoch"])["value"]
    return grouped.agg(mean="mean", seeds="count").reset_index()


def curves_figure(curves: pd.DataFrame) -> Any:
    """One panel per :data:`PANELS` metric, one line per configuration (mean over seeds) against epochs."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    means = mean_curves(curves)
    fig = make_subplots(rows=1, cols=len(PANELS), subplot_titles=list(PANELS))
    for col, metric in enumerate(PANELS.values(), start=1):
        for k, (label, own) in enumerate(means[means["metric"] == metric].groupby(LABEL, sort=True)):
            fig.add_trace(
                go.Scatter(
                    x=own["epoch"],
                    y=own["mean"],
                    mode="lines+markers",
                    name=str(label),
                    legendgroup=str(label),
                    showlegend=col == 1,
                    line={"color": f"hsl({(k * 67) % 360}, 60%, 45%)"},
                    customdata=own["seeds"],
                    hovertemplate=f"{html.escape(str(label))}<br>epoch %{{x}}: %{{y:.3f}} (mean of %{{customdata}} seeds)",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_layout(height=380, margin={"t": 40, "b": 40})
    return fig


def section_html(df: pd.DataFrame) -> str:
    """The report's "Robustness along training" section (a note instead when no trial has probe curves here)."""
    curves = load_curves(df)
    head = "<section id='training-curves'><h2>Robustness along training</h2>"
    if curves.empty:
        return (
            f"{head}<p class='note'>No probe curves: the trials' run folders are not on this machine or they "
            "trained with <code>probe.every 0</code> (the per-epoch <code>probe_*</code> metrics are in MLflow).</p></section>"
        )
    div = curves_figure(curves).to_html(
        full_html=False, include_plotlyjs=False, div_id="training-curves-plot", config={"displaylogo": False}
    )
    note = (
        "The robustness probe (radae/probe.py: fixed test images and random starts, both attacks at its "
        "lambdas, the paper's MS-SSIM) every probe.every epochs; one line per configuration, the mean over its "
        f"seeds ({curves['trial_id'].nunique()} trials). A probe of 20 images is noisy by a few hundredths."
    )
    return f"{head}{div}<p class='note'>{html.escape(note)}</p></section>"
