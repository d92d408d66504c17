"""One self-contained HTML page per sweep: headline, Pareto front, sensitivity, paper tables, attack grids, runs.

    html = build_page(df, sweep_id, links=trial_links(...), grids=attack_grids(...))

Plots are Plotly figures (plotly, pinned in requirements.txt): interactive (hover a point to see its
trial and configuration), and the page embeds plotly.js itself, so it opens from disk or inside
the MLflow UI without any network. Images (the trials' attack grids) are embedded as base64 PNGs.
Statistics come from :mod:`radae.sweep.aggregate`, tables from :mod:`radae.sweep.tables`, the
Pareto front from :func:`radae.sweep.report.pareto_table`.

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

from radae.sweep import curves, paper, tables
from radae.sweep.aggregate import TEST_NAME, completed, fmt, searched_params, summarize, with_config
from radae.sweep.report import FID, ROBUST, pareto_table

ROBUST_PAPER, SCORE = "metric.robustness_paper", "metric.score"
# Objective metric -> (label, better): the headline's "best configuration per objective".
OBJECTIVES = {
    SCORE: ("score", "max"),
    ROBUST: ("robustness R", "max"),
    ROBUST_PAPER: ("robustness R (paper MS-SSIM)", "max"),
    FID: ("FID", "min"),
}
# Paper-study slices: the other parameter's value in the paper's tables 2 (over K) and 3 (over alpha).
SLICES = {
    "param.prior.num_modes": ("param.loss.alpha", paper.TABLE2_ALPHA),
    "param.loss.alpha": ("param.prior.num_modes", paper.TABLE3_K),
}


def paper_robustness(row: paper.PaperRow) -> float:
    """R of radae/sweep/objective.py from a paper row: mean over lambda of (max-damage + 1 - latent) / 2."""
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
            items.append(f"<li>best {_e(label)} ({better}): <b>{_e(best['config_label'])}</b>: {_e(value)}</li>")
    return "<ul class='headline'>" + "".join(items) + "</ul>"


def pareto_figure(df: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    done = with_config(completed(df)).dropna(subset=[c for c in (ROBUST, FID) if c in df] or None)
    fig = go.Figure()
    if ROBUST in done and FID in done and len(done):
        front = pareto_table(done)
        hover = "trial %{customdata[0]}<br>%{customdata[1]}<br>FID %{x:.3f}, R %{y:.4f}<extra></extra>"
        fig.add_trace(
            go.Scatter(
                x=done[FID],
                y=done[ROBUST],
                mode="markers",
                name="trials",
                marker={"color": "#999", "size": 8},
                customdata=done[["trial_id", "config_label"]].to_numpy(),
                hovertemplate=hover,
            )
        )
        front = with_config(front)
        fig.add_trace(
            go.Scatter(
                x=front[FID],
                y=front[ROBUST],
                mode="lines+markers",
                name="Pareto front",
                marker={"color": "#c0392b", "size": 11},
                line={"color": "#c0392b"},
                customdata=front[["trial_id", "config_label"]].to_numpy(),
                hovertemplate=hover,
            )
        )
    fid_net = tables.FID_NETWORKS.get(tables.fid_metric(done) or "", "unknown")
    fig.update_layout(
        title="Robustness vs FID (every completed trial; the front highlighted)",
        height=450,
        xaxis_title=f"FID, {fid_net} features (lower is better)",
        yaxis_title="robustness R (higher is better)",
    )
    return fig


def _curve(rows: pd.DataFrame, param: str, metric: str) -> pd.DataFrame:
    """Mean and 95% CI of ``metric`` per value of ``param`` (rows pooled over seeds and other params)."""
    from radae.sweep.aggregate import t_half_width

    g = rows.groupby(param)[metric].agg(["mean", "std", "count"]).reset_index().sort_values(param)
    g["half"] = [t_half_width(s, int(n)) if n > 1 else math.nan for s, n in zip(g["std"], g["count"], strict=True)]
    return g


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
                        error_y={"type": "data", "array": c["half"].fillna(0)},
                        hovertemplate=f"{param.removeprefix('param.')}=%{{x}}<br>mean %{{y:.4f}}<br>n %{{customdata}}<extra>{_e(label)}</extra>",
                        customdata=c["count"],
                    ),
                    row=1,
                    col=col,
                )
    if slice_spec and ROBUST_PAPER in rows:
        # The paper's robust GMM AE (table 1, K=10, alpha 0.95): R from its MS-SSIMs (the paper formula).
        ref = paper.TABLE1[-1]
        x = 10 if param == "param.prior.num_modes" else 0.95
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
        table = paper.TABLE2 if param == "param.prior.num_modes" else paper.TABLE3
        if table:
            xs = sorted(table)
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
    fig.update_layout(
        height=380,
        title=f"Sensitivity to {param.removeprefix('param.')} (mean ± 95% CI across seeds and other parameters)",
    )
    return fig


def _table_html(table: pd.DataFrame, table_id: str) -> str:
    return table.to_html(index=False, border=0, classes="paper-table", table_id=table_id, escape=True, na_rep="")


def grids_html(grids: Mapping[str, Mapping[str, bytes]], df: pd.DataFrame) -> str:
    if not grids:
        return "<p>No attack grids found (the trials' MLflow artifacts <code>eval/grid_*.png</code> or local out dirs were not reachable).</p>"
    labels = dict(zip(with_config(df)["trial_id"], with_config(df)["config_label"], strict=True)) if len(df) else {}
    parts = []
    for role_trial, images in grids.items():
        role, _, trial = role_trial.partition(":")
        parts.append(f"<h3>{_e(role)} trial {_e(trial)}: {_e(labels.get(trial, ''))}</h3><div class='grids'>")
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
        + "".join(f"<th>{_e(c.removeprefix('metric.'))}</th>" for c in cols)
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
figure{margin:0} img.attack-grid{max-width:420px;border:1px solid #ddd} .note{color:#555;font-size:13px}"""


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
        where.append(f"<a id='optuna-link' href='{_e(optuna_url)}'>optuna-dashboard</a>")
    body = f"""<h1>Sweep {_e(sweep_id)}</h1>
<p class='note'>Generated {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}{" by <code>" + _e(command) + "</code>" if command else ""}. {" · ".join(where)}</p>
<section id='headline'><h2>Headline</h2>{headline(df)}
<p class='note'>Best = best mean over the seeds of a configuration (± 95% Student-t CI half-width).</p></section>
<section id='pareto'><h2>Pareto front</h2>{_fig_html(pareto_figure(df), "pareto-plot")}</section>
<section id='sensitivity'><h2>Sensitivity per searched parameter</h2>{sens}
<p class='note'>{_e(paper.SENSITIVITY_NOTE)} The star is the paper's robust GMM AE (table 1) with R computed from its
MS-SSIMs by the objective's formula; compare it with <code>robustness_paper</code> (the paper's MS-SSIM), not with
<code>robustness</code>. The paper's FID uses Inception-v3 features and is not drawn against classifier FIDs.</p></section>
<section id='tables'><h2>Paper-format tables</h2>
<p class='note'>mean ± 95% CI over seeds; "not run": configuration not in this sweep; "not recorded": metric absent from the rows.</p>
<h3>Table 1: models</h3>{_table_html(tables.table1(df), "table1")}
<h3>Table 2: K at alpha 0.95</h3>{_table_html(tables.table2(df), "table2")}
<h3>Table 3: alpha at K = 10</h3>{_table_html(tables.table3(df), "table3")}
<h3>Significance of robustness differences</h3><p class='note'>{_e(TEST_NAME)}; n/a: fewer than 2 seeds.</p>
{_table_html(tables.significance(df), "significance")}</section>
<section id='grids'><h2>Attack grids: best and worst trial by score</h2>
<p class='note'>Columns: source, clean reconstruction, adversarial input, its reconstruction, (latent attack) target.</p>{grids_html(grids or {}, df)}</section>
{curves.section_html(df)}
<section id='trials'><h2>Trials</h2>{trials_html(df, links or {})}</section>"""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>radae sweep {_e(sweep_id)}</title>"
        f"<style>{STYLE}</style><script type='text/javascript'>{get_plotlyjs()}</script></head><body>{body}</body></html>"
    )


def best_and_worst(df: pd.DataFrame, metric: str = SCORE) -> dict[str, str]:
    """``{"best": trial_id, "worst": trial_id}`` of the completed trials by ``metric`` (empty without it)."""
    done = completed(df)
    if metric not in done or done[metric].isna().all():
        return {}
    ranked = done.dropna(subset=[metric]).sort_values(metric)
    return {"best": str(ranked["trial_id"].iloc[-1]), "worst": str(ranked["trial_id"].iloc[0])}


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
        from radae.sweep.tracking import TRIAL_TAG

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
    :class:`radae.sweep.tracking.Tracker`, or None); returns (html, counts of links and grids)."""
    links, run_ids = run_links(df, mlflow_uri, tracker)
    grids = attack_grids(df, run_ids, tracker)
    mlflow_url = None
    if tracker is not None and (mlflow_uri or "").startswith("http"):
        from radae.sweep.tracking import WORKFLOW

        mlflow_url = f"{mlflow_uri.rstrip('/')}/#/experiments/{tracker.experiment_id}/runs?{WORKFLOW}"
    page = build_page(
        df, sweep_id, links=links, grids=grids, mlflow_url=mlflow_url, optuna_url=optuna_url, command=command
    )
    return page, {"links": len(links), "grids": sum(len(g) for g in grids.values())}
