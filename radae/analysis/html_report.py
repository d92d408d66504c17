"""One self-contained HTML page per sweep: headline, Pareto front, sensitivity, paper tables, attack grids, runs.

    html = build_page(df, sweep_id, links=trial_links(...), grids=attack_grids(...))

Plots are Plotly figures (plotly, pinned in requirements.txt): interactive (hover a point to see its
trial and configuration), and the page embeds plotly.js itself, so it opens from disk or inside
the MLflow UI without any network. Images (the trials' attack grids) are embedded as base64 PNGs.
Statistics come from :mod:`radae.analysis.aggregate`, tables from :mod:`radae.analysis.tables`, the
Pareto front from :func:`radae.objective.pareto_front` over configuration means. Intervals are
drawn clipped to their metric's range (:func:`metric_bounds`); a numeric sensitivity axis spans the
values the sweep ran (:func:`axis_range`), and the paper's references are drawn only inside it.

Under the title: ``#budget`` (dataset, epochs, training images, seeds, evaluation protocol) and, for a
``--smoke-test`` or reduced-data sweep, a ``#smoke-banner``. The paper's tables appear only for the
configurations the sweep trained, and only for the paper's dataset (MNIST); otherwise a note says why.
Every column header of a metric says which direction is better.

Sections (each a ``<section id=...>``, which the browser tests look for): ``headline``, ``pareto``,
``sensitivity`` (one ``div.sensitivity-plot`` per searched parameter), ``tables`` (``table1``,
``table2``, ``table3``, ``significance``), ``grids`` (best and worst trial by score) and ``trials``
(one row per trial with an ``a.run-link`` to its MLflow run where the run is known).
"""

from __future__ import annotations

import base64
import html
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from radae.analysis import curves, paper, tables
from radae.analysis.aggregate import (
    KEY,
    LABEL,
    TEST_NAME,
    completed,
    fmt,
    searched_params,
    summarize,
    t_half_width,
    value_text,
    with_config,
)
from radae.analysis.report import FID, ROBUST, metric_bounds
from radae.objective import pareto_front

ROBUST_PAPER, SCORE = "metric.robustness_paper", "metric.score"
# Objective metric -> (label, better): the headline's "best configuration per objective".
OBJECTIVES = {
    SCORE: ("score", "max"),
    ROBUST: ("robustness R", "max"),
    ROBUST_PAPER: ("robustness R (paper MS-SSIM)", "max"),
    FID: ("FID", "min"),
}
# The dataset of the paper's tables (their numbers are MNIST's).
PAPER_DATASET = "mnist"
# Column-name start -> which direction is better, appended to the tables' headers.
DIRECTIONS = (
    ("latent", "lower is better"),
    ("max-damage", "higher is better"),
    ("FID", "lower is better"),
    ("fid", "lower is better"),
    ("robustness", "higher is better"),
    ("score", "higher is better"),
)


def with_direction(name: str) -> str:
    """``name`` plus ``(lower is better)`` / ``(higher is better)`` when it names a metric."""
    better = next((b for start, b in DIRECTIONS if name.startswith(start)), None)
    return f"{name} ({better})" if better else name


def _values(df: pd.DataFrame, col: str, missing: str = "not recorded") -> str:
    """The distinct values of ``col`` as text (``missing`` without the column or any value)."""
    if col not in df:
        return missing
    vals = sorted({value_text(tuple(v) if isinstance(v, list | tuple) else v) for v in df[col].dropna()})
    return ", ".join(vals) if vals else missing


def _levels(df: pd.DataFrame) -> str:
    col = "config.eval.levels"
    if col not in df:
        return "not recorded"
    lists = {tuple(value_text(float(x)) for x in v) for v in df[col].dropna() if hasattr(v, "__len__")}
    return "; ".join("{" + ", ".join(lv) + "}" for lv in sorted(lists)) or "not recorded"


def is_smoke(df: pd.DataFrame) -> bool:
    """Whether the rows come from a ``--smoke-test`` sweep (their ``smoke_test`` column)."""
    return "smoke_test" in df and bool(df["smoke_test"].fillna(False).astype(bool).any())


def budget_html(df: pd.DataFrame) -> str:
    """What the numbers cost, under the title: dataset, epochs, training images, seeds, evaluation protocol."""
    b = tables.budget(df)
    limit = _values(df, "config.data.train_limit", "all")
    items = [
        (
            "dataset",
            f"{_values(df, 'config.data.name')} (read from {_values(df, 'config.data.data_dir', 'the search order')})",
        ),
        ("epochs", _values(df, "config.train.epochs")),
        ("training images", f"first {limit}" if limit not in ("all", "not recorded") else "all (no train_limit)"),
        ("seeds", b["seeds"]),
        (
            "evaluation",
            f"{_values(df, 'config.eval.images')} test images x {_values(df, 'config.eval.trials')} random starts "
            f"x λ in {_levels(df)}; {_values(df, 'config.eval.attack_steps')} attack steps, attack implementation "
            f"{_values(df, 'config.eval.attack_impl', 'the default')}; FID on {_values(df, 'config.eval.fid_samples')} "
            f"samples x {_values(df, 'config.eval.fid_runs')} runs",
        ),
        ("device", b["device"]),
    ]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items)
    return f"<table id='budget' class='budget'>{rows}</table>"


def smoke_banner(df: pd.DataFrame) -> str:
    """A banner for a smoke run or a reduced budget: its numbers say the code runs, not what the method does."""
    limited = "config.data.train_limit" in df and df["config.data.train_limit"].notna().any()
    if is_smoke(df):
        what = "Smoke run (--smoke-test)"
    elif limited:
        what = "Reduced budget (a training-image limit)"
    else:
        return ""
    return (
        f"<div id='smoke-banner' class='banner'><b>{_e(what)}:</b> {_e(_values(df, 'config.train.epochs'))} epoch(s) "
        f"on {_e(_values(df, 'config.data.train_limit', 'all'))} training images"
        ". These numbers check that the pipeline runs; they are not estimates of "
        "the method's robustness or FID and are not comparable with the paper's.</div>"
    )


def weak_attack_banner(df: pd.DataFrame) -> str:
    """A banner naming every trial whose batched attack was weaker than per-image L-BFGS-B on its strength probe
    (a ``metric.<attack>_strength_lbfgsb_l*_mean`` below 1): its robustness numbers read too high."""
    columns = [c for c in df if c.startswith("metric.") and "_strength_lbfgsb_" in c and c.endswith("_mean")]
    weak = []
    for _, row in df.iterrows():
        low = {c[7:].removesuffix("_mean"): float(row[c]) for c in columns if pd.notna(row[c]) and float(row[c]) < 1}
        if low:
            cells = ", ".join(f"{name} {value:.3f}" for name, value in sorted(low.items()))
            weak.append(f"<li>{_e(str(row.get('trial_id', '?')))}: {_e(cells)}</li>")
    if not weak:
        return ""
    return (
        "<div id='weak-attack-banner' class='banner'><b>Attack weaker than per-image L-BFGS-B</b> "
        "(strength &lt; 1 on the evaluation's probe: these trials' robustness may read too high):"
        f"<ul>{''.join(weak)}</ul></div>"
    )


def covered(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(the paper table's entries the sweep trained, the names of those it did not): an entry is
    covered when one of its radae rows has a value other than "not run"."""
    first = table.columns[0]
    radae = table[table["source"].str.startswith("radae")]
    cells = radae[tables.COLUMNS]
    ran = set(radae[(cells != tables.NOT_RUN).any(axis=1)][first])
    names = list(dict.fromkeys(table[first]))
    return table[table[first].isin(ran)], [n for n in names if n not in ran]


def paper_tables_html(df: pd.DataFrame) -> str:
    """The paper's tables 1-3, each only with the entries the sweep trained; none off the paper's dataset."""
    datasets = set(completed(df).get("config.data.name", pd.Series(dtype=str)).dropna().astype(str))
    if datasets and datasets != {PAPER_DATASET}:
        return (
            f"<p id='paper-tables-note' class='note'>The paper's tables report {PAPER_DATASET.upper()}; this sweep "
            f"trained on {_e(', '.join(sorted(datasets)))}, so they are not shown (no like-for-like comparison).</p>"
        )
    parts = []
    for table_id, title, table in (
        ("table1", "Table 1: models", tables.table1(df)),
        ("table2", "Table 2: K at alpha 0.95", tables.table2(df)),
        ("table3", "Table 3: alpha at K = 10", tables.table3(df)),
    ):
        shown, missing = covered(table)
        if shown.empty:
            parts.append(f"<p class='note' id='{table_id}-note'>{_e(title)}: this sweep trained none of its rows.</p>")
            continue
        note = f"<p class='note'>Not in this sweep: {_e(', '.join(missing))}.</p>" if missing else ""
        parts.append(f"<h3>{_e(title)}</h3>{_table_html(shown, table_id)}{note}")
    return "".join(parts)


# Paper-study slices: the other parameter's value in the paper's tables 2 (over K) and 3 (over alpha).
SLICES = {
    "param.prior.num_modes": ("param.loss.alpha", paper.TABLE2_ALPHA),
    "param.loss.alpha": ("param.prior.num_modes", paper.TABLE3_K),
}


def paper_robustness(row: paper.PaperRow) -> float:
    """R of radae/objective.py from a paper row: mean over lambda of (max-damage + 1 - latent) / 2."""
    return sum((d + 1 - lat) / 2 for d, lat in zip(row.max_damage, row.latent, strict=True)) / len(row.latent)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fig_html(fig: Any, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False})


def headline(df: pd.DataFrame) -> str:
    counts = df["status"].value_counts().to_dict() if "status" in df else {}
    wall = ""
    if {"started_at", "finished_at"} <= set(df.columns):
        start, end = (
            pd.to_numeric(df["started_at"], errors="coerce").min(),
            pd.to_numeric(df["finished_at"], errors="coerce").max(),
        )
        if math.isfinite(start) and math.isfinite(end):
            wall = f"{(end - start) / 60:.1f} min from the first trial's start to the last trial's end"
    summed = pd.to_numeric(df.get("wall_seconds", pd.Series(dtype=float)), errors="coerce").sum()
    items = [
        f"<li>trials: <b>{counts.get('completed', 0)}</b> completed, <b>{counts.get('pruned', 0)}</b> pruned, "
        f"<b>{counts.get('error', 0)}</b> failed ({len(df)} rows)</li>",
        f"<li>wall time: {_e(wall or 'not recorded')}; {summed / 60:.1f} min of trial time summed</li>",
    ]
    metrics = [m for m in OBJECTIVES if m in df and completed(df)[m].notna().any()]
    if metrics:
        s = summarize(df, metrics)
        for m in metrics:
            label, better = OBJECTIVES[m]
            best = s.loc[s[f"{m}:mean"].idxmax() if better == "max" else s[f"{m}:mean"].idxmin()]
            value = fmt(best[f"{m}:mean"], best[f"{m}:ci_half"], int(best[f"{m}:n"]), 4)
            direction = "higher is better" if better == "max" else "lower is better"
            items.append(f"<li>best {_e(label)} ({direction}): <b>{_e(best['config_label'])}</b>: {_e(value)}</li>")
    return "<ul class='headline'>" + "".join(items) + "</ul>"


def whiskers(mean: pd.Series, low: pd.Series, high: pd.Series, metric: str) -> dict[str, Any]:
    """Plotly ``error_x``/``error_y`` of intervals [low, high] around ``mean``, clipped to :func:`metric_bounds`
    (no interval, e.g. one run: no whisker)."""
    lo, hi = metric_bounds(metric)
    plus = (high.clip(lower=lo, upper=hi) - mean).clip(lower=0).fillna(0)
    minus = (mean - low.clip(lower=lo, upper=hi)).clip(lower=0).fillna(0)
    return {"type": "data", "symmetric": False, "array": plus.to_numpy(), "arrayminus": minus.to_numpy()}


def config_means(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per configuration: mean, interval and n of ``metrics`` (:func:`radae.analysis.aggregate.summarize`)."""
    rows = completed(df).dropna(subset=metrics)
    return summarize(rows, metrics) if len(rows) else pd.DataFrame()


def headline_metrics(df: pd.DataFrame) -> dict[str, float]:
    """The headline as MLflow metrics of the sweep's parent run: for each objective metric (``score``,
    ``robustness``, ``robustness_paper``, ``fid``) the mean over seeds of the configuration best by it,
    under the metric's own name (so the parent's row fills the same columns as its trials), and
    ``configurations``, the number of configurations completed."""
    metrics = [m for m in OBJECTIVES if m in df and completed(df)[m].notna().any()]
    if not metrics:
        return {}
    s = summarize(df, metrics)
    out = {"configurations": float(len(s))}
    for m in metrics:
        col = s[f"{m}:mean"]
        out[m.removeprefix("metric.")] = float(col.max() if OBJECTIVES[m][1] == "max" else col.min())
    return out


def pareto_figure(df: pd.DataFrame) -> Any:
    """Robustness against FID per configuration: its mean over seeds with 95% interval whiskers, one colour
    and label per configuration, the front through the non-dominated means; single runs faint behind."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fid_col = FID if FID in df else None
    if ROBUST in df and fid_col:
        runs = with_config(completed(df)).dropna(subset=[ROBUST, fid_col])
        means = config_means(df, [ROBUST, fid_col])
        if len(runs):
            fig.add_trace(
                go.Scatter(
                    x=runs[fid_col],
                    y=runs[ROBUST],
                    mode="markers",
                    name="single runs",
                    marker={"color": "rgba(120,120,120,0.35)", "size": 6},
                    customdata=runs[["trial_id", LABEL]].to_numpy(),
                    hovertemplate="run %{customdata[0]}<br>%{customdata[1]}<br>FID %{x:.3f}, R %{y:.4f}<extra></extra>",
                )
            )
        for _, c in means.iterrows():
            one = pd.DataFrame([c])
            fig.add_trace(
                go.Scatter(
                    x=one[f"{fid_col}:mean"],
                    y=one[f"{ROBUST}:mean"],
                    mode="markers+text",
                    name=str(c[LABEL]),
                    text=[str(c[LABEL])],
                    textposition="top center",
                    marker={"size": 11},
                    error_x=whiskers(
                        one[f"{fid_col}:mean"], one[f"{fid_col}:ci_low"], one[f"{fid_col}:ci_high"], fid_col
                    ),
                    error_y=whiskers(one[f"{ROBUST}:mean"], one[f"{ROBUST}:ci_low"], one[f"{ROBUST}:ci_high"], ROBUST),
                    hovertemplate=f"{_e(c[LABEL])}<br>mean FID %{{x:.3f}}, mean R %{{y:.4f}}<br>n {int(c[f'{ROBUST}:n'])}<extra></extra>",
                )
            )
        if len(means):
            idx = pareto_front(zip(means[f"{ROBUST}:mean"], means[f"{fid_col}:mean"], strict=True))
            front = means.iloc[idx].sort_values(f"{fid_col}:mean")
            fig.add_trace(
                go.Scatter(
                    x=front[f"{fid_col}:mean"],
                    y=front[f"{ROBUST}:mean"],
                    mode="lines",
                    name="Pareto front (of the means)",
                    line={"color": "#c0392b", "dash": "dot"},
                    hoverinfo="skip",
                )
            )
            # room for the labels written beside the outermost points (plotly clips text at the axes)
            for axis, metric in (("xaxis", fid_col), ("yaxis", ROBUST)):
                lo, hi = metric_bounds(metric)
                low = means[f"{metric}:ci_low"].fillna(means[f"{metric}:mean"]).clip(lower=lo).min()
                high = means[f"{metric}:ci_high"].fillna(means[f"{metric}:mean"]).clip(upper=hi).max()
                pad = (high - low) * 0.15 if high > low else abs(high) * 0.1 or 0.5
                fig.update_layout({axis: {"range": [low - pad, high + pad]}})
    fid_net = tables.FID_NETWORKS.get(tables.fid_metric(completed(df)) or "", "unknown")
    fig.update_layout(
        title="Robustness vs FID per configuration (mean over seeds, 95% interval whiskers; the front of the means dotted)",
        height=480,
        xaxis_title=f"FID, {fid_net} features (lower is better)",
        yaxis_title="robustness R (higher is better)",
    )
    return fig


def _curve(rows: pd.DataFrame, param: str, metric: str) -> pd.DataFrame:
    """Mean and 95% CI of ``metric`` per value of ``param`` (rows pooled over seeds and other params),
    the interval clipped to the metric's range (:func:`metric_bounds`)."""
    g = rows.groupby(param)[metric].agg(["mean", "std", "count"]).reset_index().sort_values(param)
    g["half"] = [t_half_width(s, int(n)) if n > 1 else math.nan for s, n in zip(g["std"], g["count"], strict=True)]
    g["low"], g["high"] = g["mean"] - g["half"], g["mean"] + g["half"]
    return g


def axis_range(values: list[float]) -> list[float]:
    """An x range around the values drawn: their span plus 8% each side; a single value +-10% of it (or 0.5)."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 if hi > lo else (abs(lo) * 0.1 or 0.5)
    return [lo - pad, hi + pad]


def sensitivity_figure(df: pd.DataFrame, param: str) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = completed(df)
    fid_col = tables.fid_metric(rows)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("robustness R", f"FID ({tables.FID_NETWORKS.get(fid_col or '', 'none')} features)"),
    )
    numeric = pd.to_numeric(rows[param], errors="coerce").notna().all() if len(rows) else False
    slice_spec = SLICES.get(param)
    for col, metrics in ((1, [ROBUST, ROBUST_PAPER]), (2, [fid_col] if fid_col else [])):
        for metric in metrics:
            if metric not in rows or rows[metric].isna().all():
                continue
            variants = [("all trials", rows)]
            if slice_spec and slice_spec[0] in rows:
                other, value = slice_spec
                sliced = rows[pd.to_numeric(rows[other], errors="coerce").sub(value).abs() < 1e-9]
                if len(sliced):
                    variants.append((f"at {other.removeprefix('param.')}={value:g} (paper table)", sliced))
            for name, part in variants:
                c = _curve(part, param, metric)
                label = f"{metric.removeprefix('metric.')}, {name}"
                x = c[param] if numeric else c[param].astype(str)
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=c["mean"],
                        name=label,
                        mode="lines+markers" if len(c) <= 12 else "markers",
                        error_y=whiskers(c["mean"], c["low"], c["high"], metric),
                        hovertemplate=f"{param.removeprefix('param.')}=%{{x}}<br>mean %{{y:.4f}}<br>n %{{customdata}}<extra>{_e(label)}</extra>",
                        customdata=c["count"],
                    ),
                    row=1,
                    col=col,
                )
    ran = sorted(pd.to_numeric(rows[param], errors="coerce").dropna().unique()) if numeric and len(rows) else []

    def inside(x: float) -> bool:
        return bool(ran) and ran[0] - 1e-9 <= x <= ran[-1] + 1e-9

    on_paper_data = set(rows.get("config.data.name", pd.Series([PAPER_DATASET])).dropna()) <= {PAPER_DATASET}
    ref_x = 10 if param == "param.prior.num_modes" else 0.95
    if slice_spec and ROBUST_PAPER in rows and on_paper_data and inside(ref_x):
        # The paper's robust GMM AE (table 1, K=10, alpha 0.95): R from its MS-SSIMs (the paper formula).
        ref = paper.TABLE1[-1]
        x = ref_x
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[paper_robustness(ref)],
                mode="markers",
                name="paper, table 1 (R from its MS-SSIMs)",
                marker={"symbol": "star", "size": 14, "color": "#000"},
            ),
            row=1,
            col=1,
        )
    if slice_spec and ROBUST_PAPER in rows and on_paper_data:
        table = paper.TABLE2 if param == "param.prior.num_modes" else paper.TABLE3
        xs = sorted(k for k in table if inside(k))  # only what the sweep covers
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[paper_robustness(table[k]) for k in xs],
                    mode="lines+markers",
                    name="paper, sensitivity table",
                    line={"dash": "dot", "color": "#000"},
                ),
                row=1,
                col=1,
            )
    fig.update_xaxes(title_text=param.removeprefix("param."))
    if ran:
        fig.update_xaxes(range=axis_range([float(x) for x in ran]))
    fig.update_layout(
        height=380,
        title=f"Sensitivity to {param.removeprefix('param.')} (mean ± 95% CI across seeds and other parameters)",
    )
    return fig


def _table_html(table: pd.DataFrame, table_id: str) -> str:
    table = table.rename(columns=with_direction)
    return table.to_html(index=False, border=0, classes="paper-table", table_id=table_id, escape=True, na_rep="")


def grids_html(grids: Mapping[str, Mapping[str, bytes]], df: pd.DataFrame) -> str:
    if not grids:
        return "<p>No attack grids found (the trials' MLflow artifacts <code>eval/grid_*.png</code> or local out dirs were not reachable).</p>"
    metric = headline_objective(df)
    rows = with_config(completed(df))
    parts = []
    for role_trial, images in grids.items():
        role, _, trial = role_trial.partition(":")
        own = rows[rows["trial_id"] == trial]
        heading = f"{role} configuration: trial {trial}"
        if len(own) and metric:
            config = rows[rows[KEY] == own[KEY].iloc[0]][metric].dropna()
            seed = f"seed {value_text(own['seed'].iloc[0])}, " if "seed" in own and own["seed"].notna().all() else ""
            heading = (
                f"{role} configuration by mean {OBJECTIVES[metric][0]}: {own[LABEL].iloc[0]} "
                f"(mean {config.mean():.4f} over {len(config)} run(s)); grids of trial {trial} "
                f"({seed}{OBJECTIVES[metric][0]} {float(own[metric].iloc[0]):.4f}, the run nearest the mean)"
            )
        parts.append(f"<h3 class='grid-heading'>{_e(heading)}</h3><div class='grids'>")
        for name, data in sorted(images.items()):
            b64 = base64.b64encode(data).decode()
            parts.append(
                f"<figure><img class='attack-grid' alt='{_e(name)}' src='data:image/png;base64,{b64}'/>"
                f"<figcaption>{_e(name)}</figcaption></figure>"
            )
        parts.append("</div>")
    return "".join(parts)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return _e(f"{value:.4g}" if isinstance(value, float) else value)


def trials_html(df: pd.DataFrame, links: Mapping[str, str]) -> str:
    d = with_config(df)
    cols = ["trial_id", "status", "config_label", *(["seed"] if "seed" in d else []), ROBUST, FID, SCORE]
    out = [
        "<table id='trials' class='paper-table'><thead><tr>"
        + "".join(f"<th>{_e(with_direction(c.removeprefix('metric.')))}</th>" for c in cols)
        + "<th>MLflow run</th></tr></thead><tbody>"
    ]
    for _, r in d.iterrows():
        cells = "".join(f"<td>{_cell(r.get(c))}</td>" for c in cols)
        url = links.get(str(r["trial_id"]))
        link = f"<a class='run-link' href='{_e(url)}' target='_blank'>run</a>" if url else "not known"
        out.append(f"<tr>{cells}<td>{link}</td></tr>")
    return "".join(out) + "</tbody></table>"


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table.paper-table{border-collapse:collapse;font-size:13px;margin:1em 0}
table.paper-table td,table.paper-table th{border:1px solid #ccc;padding:3px 6px;text-align:left}
table.paper-table th{background:#f3f3f3} .grids{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0} img.attack-grid{max-width:420px;border:1px solid #ddd} .note{color:#555;font-size:13px}
table.budget{border-collapse:collapse;font-size:14px;margin:.5em 0} table.budget th{text-align:left;padding:1px 12px 1px 0;color:#555;font-weight:normal}
.banner{background:#fff3cd;border:1px solid #e0b400;padding:.6em 1em;margin:.8em 0;font-size:15px}"""


def build_page(
    df: pd.DataFrame,
    sweep_id: str,
    *,
    links: Mapping[str, str] | None = None,
    grids: Mapping[str, Mapping[str, bytes]] | None = None,
    mlflow_url: str | None = None,
    optuna_url: str | None = None,
    command: str | None = None,
) -> str:
    """The report page as one HTML string (plotly.js and images inside)."""
    from plotly.offline import get_plotlyjs

    params = searched_params(df)
    sens = (
        "".join(
            f"<div class='sensitivity-plot' data-param='{_e(p)}'>{_fig_html(sensitivity_figure(df, p), 'sens-' + p.replace('.', '-'))}</div>"
            for p in params
        )
        or "<p>No searched parameters.</p>"
    )
    where = []
    if mlflow_url:
        where.append(f"<a id='mlflow-link' href='{_e(mlflow_url)}'>MLflow runs of this sweep</a>")
    if optuna_url:
        where.append(f"<a id='optuna-link' href='{_e(optuna_url)}'>optuna-dashboard: this sweep's study</a>")
    body = f"""<h1>Sweep {_e(sweep_id)}</h1>
{smoke_banner(df)}{weak_attack_banner(df)}{budget_html(df)}
<p class='note'>Generated {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}{" by <code>" + _e(command) + "</code>" if command else ""}. {" · ".join(where)}</p>
<section id='headline'><h2>Headline</h2>{headline(df)}
<p class='note'>Best = best mean over the seeds of a configuration (± 95% Student-t CI half-width).</p></section>
<section id='pareto'><h2>Pareto front</h2>{_fig_html(pareto_figure(df), "pareto-plot")}</section>
<section id='sensitivity'><h2>Sensitivity per searched parameter</h2>{sens}
<p class='note'>{_e(paper.SENSITIVITY_NOTE)} The star is the paper's robust GMM AE (table 1) with R computed from its
MS-SSIMs by the objective's formula; compare it with <code>robustness_paper</code> (the paper's MS-SSIM), not with
<code>robustness</code>. The paper's FID uses Inception-v3 features and is not drawn against classifier FIDs.</p></section>
<section id='tables'><h2>Paper-format tables</h2>
<p class='note'>mean ± 95% CI over seeds; only the rows this sweep trained; "not recorded": metric absent from the rows.</p>
{paper_tables_html(df)}
<h3>Significance of robustness differences</h3><p class='note'>{_e(TEST_NAME)}; n/a: fewer than 2 seeds.</p>
{_table_html(tables.significance(df), "significance")}</section>
<section id='grids'><h2>Attack grids: best and worst configuration by the headline's objective</h2>
<p class='note'>Columns: source, clean reconstruction, adversarial input, its reconstruction, (latent attack) target.</p>{grids_html(grids or {}, df)}</section>
{curves.section_html(df)}
<section id='trials'><h2>Trials</h2>{trials_html(df, links or {})}</section>"""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>radae sweep {_e(sweep_id)}</title>"
        f"<style>{STYLE}</style><script type='text/javascript'>{get_plotlyjs()}</script></head><body>{body}</body></html>"
    )


def headline_objective(df: pd.DataFrame) -> str | None:
    """The objective the headline ranks configurations by first: the sweep's score, else robustness R."""
    return next((m for m in (SCORE, ROBUST) if m in df and completed(df)[m].notna().any()), None)


def best_and_worst(df: pd.DataFrame, metric: str | None = None) -> dict[str, str]:
    """``{"best": trial_id, "worst": trial_id}``: the configurations with the best and the worst MEAN of
    ``metric`` over their seeds (default :func:`headline_objective`, as the headline ranks them), each
    shown by its run nearest that mean. Empty without the metric; only "best" with one configuration."""
    metric = metric or headline_objective(df)
    if metric is None or metric not in df:
        return {}
    done = with_config(completed(df)).dropna(subset=[metric])
    if done.empty:
        return {}
    means = done.groupby(KEY)[metric].mean()
    better = OBJECTIVES.get(metric, ("", "max"))[1]
    keys = {"best": means.idxmax(), "worst": means.idxmin()}
    if better == "min":
        keys = {"best": keys["worst"], "worst": keys["best"]}
    out = {}
    for role, key in keys.items():
        if role == "worst" and key == keys["best"]:
            continue
        runs = done[done[KEY] == key]
        out[role] = str(runs["trial_id"].iloc[int((runs[metric] - means[key]).abs().to_numpy().argmin())])
    return out


def attack_grids(df: pd.DataFrame, run_ids: Mapping[str, str], tracker: Any = None) -> dict[str, dict[str, bytes]]:
    """``{"best:<trial>": {"grid_latent_3.png": png bytes, ...}, "worst:<trial>": ...}``: the trials' local
    ``<train.out_dir>/eval/grid_*.png``, else their MLflow artifacts ``eval/grid_*.png``."""
    import tempfile

    out: dict[str, dict[str, bytes]] = {}
    rows = df.set_index("trial_id") if "trial_id" in df else df
    for role, trial in best_and_worst(df).items():
        images: dict[str, bytes] = {}
        local = rows.loc[trial].get("config.train.out_dir") if trial in rows.index else None
        if isinstance(local, str) and (Path(local) / "eval").is_dir():
            images = {p.name: p.read_bytes() for p in sorted((Path(local) / "eval").glob("grid_*.png"))}
        if not images and tracker is not None and trial in run_ids:
            try:
                with tempfile.TemporaryDirectory(prefix="radae-grids-") as tmp:
                    path = Path(tracker.client.download_artifacts(run_ids[trial], "eval", tmp))
                    images = {p.name: p.read_bytes() for p in sorted(path.glob("grid_*.png"))}
            except Exception:  # noqa: BLE001 - a missing artifact leaves the section's note
                images = {}
        if images:
            out[f"{role}:{trial}"] = images
    return out


def run_links(df: pd.DataFrame, mlflow_uri: str | None, tracker: Any = None) -> tuple[dict[str, str], dict[str, str]]:
    """(``{trial_id: MLflow run page URL}``, ``{trial_id: run id}``) from the rows' ``mlflow_run_id`` /
    ``mlflow_experiment_id`` columns, else from the tracker's runs tagged with the trial id."""
    ids: dict[str, tuple[str, str]] = {}
    if {"mlflow_run_id", "mlflow_experiment_id"} <= set(df.columns):
        for t, r, e in zip(df["trial_id"], df["mlflow_run_id"], df["mlflow_experiment_id"], strict=True):
            if isinstance(r, str) and r:
                ids[str(t)] = (str(e), r)
    if tracker is not None and "sweep_id" in df and len(df):
        # lazy: radae.store.tracking imports mlflow; a report from Parquet rows needs it only for run links
        from radae.store.tracking import TRIAL_TAG

        for run in tracker.trial_runs(str(df["sweep_id"].iloc[0])):
            ids.setdefault(run.data.tags.get(TRIAL_TAG, ""), (run.info.experiment_id, run.info.run_id))
    base = (mlflow_uri or "").rstrip("/")
    links = {t: f"{base}/#/experiments/{e}/runs/{r}" for t, (e, r) in ids.items()} if base.startswith("http") else {}
    return links, {t: r for t, (_, r) in ids.items()}


def render_sweep(
    df: pd.DataFrame,
    sweep_id: str,
    *,
    mlflow_uri: str | None = None,
    tracker: Any = None,
    optuna_url: str | None = None,
    command: str | None = None,
) -> tuple[str, dict[str, int]]:
    """The page of a sweep with its run links and attack grids looked up (``tracker``: a
    :class:`radae.store.tracking.Tracker`, or None); returns (html, counts of links and grids)."""
    links, run_ids = run_links(df, mlflow_uri, tracker)
    grids = attack_grids(df, run_ids, tracker)
    mlflow_url = None
    if tracker is not None and (mlflow_uri or "").startswith("http"):
        # lazy: radae.store.tracking imports mlflow; a report from Parquet rows needs it only for run links
        from radae.store.tracking import WORKFLOW, compare_url

        # the sweep's trials as a flat list sorted by the objective; else the experiment's runs page
        mlflow_url = compare_url(tracker, sweep_id) or (
            f"{mlflow_uri.rstrip('/')}/#/experiments/{tracker.experiment_id}/runs?{WORKFLOW}"
        )
    page = build_page(
        df, sweep_id, links=links, grids=grids, mlflow_url=mlflow_url, optuna_url=optuna_url, command=command
    )
    return page, {"links": len(links), "grids": sum(len(g) for g in grids.values())}
