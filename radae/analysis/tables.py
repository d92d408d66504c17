"""The paper's tables 1-4 built from a sweep's rows, radae's values beside the paper's.

Each table is a ``pandas.DataFrame`` of display strings (:func:`table1`, :func:`table2`,
:func:`table3`, :func:`table4`, :func:`visibility`), rendered as Markdown for ``docs/reproduction.md`` (:func:`reproduction_markdown`)
and as HTML by the sweep report. Layout as in the paper: latent-attack MS-SSIM(x_t, recon x_a)
and max-damage MS-SSIM(recon x, recon x_a) at lambda 1, 3, 5, then FID. For every model or
configuration there is the paper's row and radae's rows in both MS-SSIMs:

- ``MS-SSIM paper formula``: ``metric.<attack>_msssim_paper_<compared>_l<lambda>_mean`` (the authors'
  ``pytorch_msssim.msssim``, the one comparable with the paper's numbers);
- ``MS-SSIM standard``: ``metric.<attack>_msssim_<compared>_l<lambda>_mean``.

Values are ``mean [95% interval]`` over the seeds and the attacked images of a configuration
(:mod:`radae.analysis.intervals`: a bootstrap over seeds and images, from the sweep's per-image table when
given, else parametric from each trial's mean, std and n); ``(n=1)`` marks a single run. A configuration the sweep did not train reads "not run"; a metric the
sweep did not record (older sweeps lack the paper formula) reads "not recorded". FID cells name their
feature network: radae's ``classifier`` FID and the paper's ``Inception-v3`` FID are different metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

import pandas as pd

from radae.analysis import intervals, paper
from radae.analysis.aggregate import KEY as KEY_COLUMN
from radae.analysis.aggregate import LABEL as LABEL_COLUMN
from radae.analysis.aggregate import completed, holm, value_text, with_config
from radae.analysis.samples import samples
from radae.config import RunConfig
from radae.objective import LATENT_KEY, MAXDAMAGE_KEY

# MS-SSIM variant -> (latent template, max-damage template), metric names without "metric.".
VARIANTS = {
    "MS-SSIM paper formula": (
        "latent_msssim_paper_xt_recxa_l{level}_mean",
        "max_damage_msssim_paper_recx_recxa_l{level}_mean",
    ),
    "MS-SSIM standard": (LATENT_KEY, MAXDAMAGE_KEY),
}
# FID metric -> feature network shown beside every FID value.
FID_NETWORKS = {"metric.fid_inception_mean": "Inception-v3", "metric.fid_classifier_mean": "classifier"}
COLUMNS = [*(f"latent λ={lv}" for lv in paper.LEVELS), *(f"max-damage λ={lv}" for lv in paper.LEVELS), "FID"]
NOT_RUN, NOT_RECORDED = "not run", "not recorded"


def _column_of(df: pd.DataFrame, key: str) -> pd.Series | None:
    """``key``'s value per row: the sampled ``param.<key>``, else the trained ``config.<key>`` (rows joined
    from a sweep that set the key in its base, not its space, have only the latter)."""
    cols = [df[col] for col in (f"param.{key}", f"config.{key}") if col in df]
    if not cols:
        return None
    return cols[0] if len(cols) == 1 else cols[0].astype(object).combine_first(cols[1].astype(object))


def _matches(col: pd.Series, value: object) -> pd.Series:
    if isinstance(value, str):
        return col.astype("string") == value
    if isinstance(value, bool):
        return col.map(lambda v: None if pd.isna(v) else bool(v) == value)
    return pd.to_numeric(col, errors="coerce").sub(value).abs() < 1e-9


def select(df: pd.DataFrame, model: str | None, where: Mapping[str, object]) -> pd.DataFrame:
    """Completed rows of ``model`` (``config.model.name``; rae when the column is absent) with every
    ``where`` key (``param.<key>`` or ``config.<key>``) equal to its value (numbers to 1e-9, strings
    exactly). A row that does not record a key (no column, or null in rows joined from an older sweep)
    matches only when the value is RunConfig's default: it ran with the default."""
    rows = completed(df)
    mask = pd.Series(True, index=rows.index)
    if model is not None:
        names = rows["config.model.name"] if "config.model.name" in rows else pd.Series("rae", index=rows.index)
        mask &= names == model
    defaults = RunConfig().flat()
    for key, value in where.items():
        col = _column_of(rows, key)
        if col is None:
            col = pd.Series(None, index=rows.index, dtype=object)
        unrecorded = col.isna() & (defaults.get(key) == value)
        mask &= _matches(col, value).fillna(False).astype(bool) | unrecorded
    return rows[mask]


# Training settings radae's rows of tables 1-3 are taken at: RunConfig's defaults. The robustness-gap factor
# sweeps (sweeps/robustness_gap_factors.yaml) change one of them at K 10 / 25, alpha 0.95; pinning them
# keeps those rows out of the paper's tables (radae.analysis.factors compares them instead).
PINNED_TRAINING = (
    "prior.placement",
    "adv.eps",
    "adv.step_size",
    "loss.rec_weight",
    "loss.ks_weighting",
    "loss.latent_noise",
    "loss.adv_rec",
    "train.lr",
)


def at_defaults(where: Mapping[str, object]) -> dict[str, object]:
    """``where`` plus every :data:`PINNED_TRAINING` key at its RunConfig default (``where`` wins)."""
    defaults = RunConfig().flat()
    return {**{key: defaults[key] for key in PINNED_TRAINING}, **where}


def interval(rows: pd.DataFrame, column: str, images: pd.DataFrame | None = None) -> intervals.Interval:
    """``column``'s mean over ``rows`` with its 95% interval over seeds and images (:mod:`radae.analysis.intervals`)."""
    return intervals.mean_interval(samples(rows, column, images), column)


def _stat(rows: pd.DataFrame, column: str, digits: int = 3, images: pd.DataFrame | None = None) -> str:
    if column not in rows or rows[column].astype(float).dropna().empty:
        return NOT_RECORDED
    return intervals.fmt(interval(rows, column, images), digits)


def fid_metric(rows: pd.DataFrame) -> str | None:
    """The FID column of these rows: Inception-v3 where recorded, else classifier features."""
    return next((c for c in FID_NETWORKS if c in rows and rows[c].notna().any()), None)


def radae_cells(rows: pd.DataFrame, images: pd.DataFrame | None = None) -> dict[str, list[str]]:
    """``{variant: cells in COLUMNS order}`` for matched rows (all "not run" when there are none);
    ``images``: the sweep's per-image table (None: intervals from the rows' means and stds)."""
    out = {}
    fid_col = fid_metric(rows)
    for variant, (latent, damage) in VARIANTS.items():
        if rows.empty:
            out[variant] = [NOT_RUN] * len(COLUMNS)
            continue
        cells = [_stat(rows, f"metric.{latent.format(level=lv)}", images=images) for lv in paper.LEVELS]
        cells += [_stat(rows, f"metric.{damage.format(level=lv)}", images=images) for lv in paper.LEVELS]
        fid = _stat(rows, fid_col, 2, images) if fid_col else NOT_RECORDED
        cells.append(f"{fid} ({FID_NETWORKS[fid_col]})" if fid_col else fid)
        out[variant] = cells
    return out


def paper_cells(row: paper.PaperRow | None) -> list[str]:
    if row is None:
        return [""] * len(COLUMNS)
    return [f"{v:.2f}" for v in (*row.latent, *row.max_damage)] + [f"{row.fid:.2f} ({paper.PAPER_FID_NETWORK})"]


def _table(
    entries: Sequence[tuple[str, paper.PaperRow | None, pd.DataFrame]], first: str, images: pd.DataFrame | None = None
) -> pd.DataFrame:
    records = []
    for name, ref, rows in entries:
        source = "paper" if ref is not None else "paper (not available, see note)"
        records.append({first: name, "source": source, **dict(zip(COLUMNS, paper_cells(ref), strict=True))})
        n = len(rows)
        for variant, cells in radae_cells(rows, images).items():
            label = f"radae, {variant}" + (f" (n={n})" if n else "")
            records.append({first: name, "source": label, **dict(zip(COLUMNS, cells, strict=True))})
    return pd.DataFrame.from_records(records, columns=[first, "source", *COLUMNS])


def table1(df: pd.DataFrame, images: pd.DataFrame | None = None) -> pd.DataFrame:
    """Paper table 1: one block per model (paper row, radae in both MS-SSIMs)."""
    entries = []
    for ref in paper.TABLE1:
        model, where = paper.TABLE1_MATCH[ref.model]
        entries.append((ref.model, ref, select(df, model, at_defaults(where))))
    return _table(entries, "model", images)


def table2_rows(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``[(label, rows)]`` of paper table 2: K in :data:`paper.TABLE2_K` at alpha 0.95, FGSM training, the
    other training settings at their defaults (:func:`at_defaults`)."""
    return [
        (
            f"K={k}",
            select(
                df,
                "rae",
                at_defaults({"prior.num_modes": k, "loss.alpha": paper.TABLE2_ALPHA, **paper.SENSITIVITY_MATCH}),
            ),
        )
        for k in paper.TABLE2_K
    ]


def table3_rows(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``[(label, rows)]`` of paper table 3: alpha in :data:`paper.TABLE3_ALPHA` at K = 10, FGSM training, the
    other training settings at their defaults (:func:`at_defaults`)."""
    return [
        (
            f"alpha={a:g}",
            select(
                df,
                "rae",
                at_defaults({"loss.alpha": a, "prior.num_modes": paper.TABLE3_K, **paper.SENSITIVITY_MATCH}),
            ),
        )
        for a in paper.TABLE3_ALPHA
    ]


def table2(df: pd.DataFrame, images: pd.DataFrame | None = None) -> pd.DataFrame:
    """Paper table 2: K in {1, 5, 10, 15, 20, 25} at alpha 0.95 (robust GMM AE)."""
    entries = [
        (label, paper.TABLE2.get(k), rows) for (label, rows), k in zip(table2_rows(df), paper.TABLE2_K, strict=True)
    ]
    return _table(entries, "K (alpha 0.95)", images)


def table3(df: pd.DataFrame, images: pd.DataFrame | None = None) -> pd.DataFrame:
    """Paper table 3: alpha in {0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 1.0} at K = 10."""
    entries = [
        (label, paper.TABLE3.get(a), rows) for (label, rows), a in zip(table3_rows(df), paper.TABLE3_ALPHA, strict=True)
    ]
    return _table(entries, "alpha (K 10)", images)


def trend(
    df: pd.DataFrame, which: str, metric: str = "metric.robustness", images: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Robustness along one axis of the sensitivity study: per configuration mean [95% interval] over seeds
    and images (:func:`interval`) and n, plus
    the ordinary least-squares slope of ``metric`` on the axis value over all seeds with its 95% CI
    (scipy.stats.linregress; the CI uses the t quantile with n - 2 degrees of freedom).

    ``which``: ``"K"`` (table 2) or ``"alpha"`` (table 3).
    """
    from scipy import stats

    pairs, values = (table2_rows(df), paper.TABLE2_K) if which == "K" else (table3_rows(df), paper.TABLE3_ALPHA)
    records, xs, ys = [], [], []
    for (label, rows), x in zip(pairs, values, strict=True):
        vals = rows[metric].astype(float).dropna() if metric in rows else pd.Series(dtype=float)
        cell = intervals.fmt(interval(rows, metric, images)) if len(vals) else NOT_RUN
        records.append({which: label, "n": len(vals), metric.removeprefix("metric."): cell})
        xs += [x] * len(vals)
        ys += list(vals)
    table = pd.DataFrame.from_records(records, columns=[which, "n", metric.removeprefix("metric.")])
    if len(set(xs)) >= 2 and len(xs) >= 3:
        fit = stats.linregress(xs, ys)
        half = float(stats.t.ppf(0.975, len(xs) - 2) * fit.stderr)
        table.attrs["slope"] = f"{fit.slope:+.4f} ± {half:.4f} per unit of {which} (n={len(xs)}, p={fit.pvalue:.3g})"
    return table


SIGNIFICANCE_COLUMNS = ["configuration A", "configuration B", "n", "mean A - mean B [95%]", "p (Holm)", "significant"]
TEST_NAME = (
    "bootstrap over seeds and images (radae/analysis/intervals.py), two-sided p-values Holm-corrected over all "
    "pairs of configurations, alpha 0.05"
)


def _p_text(p: float) -> str:
    """A bootstrap p of 0 means below the replicates' resolution, 2 / B."""
    if not math.isfinite(p):
        return "n/a"
    return f"< {2 / intervals.REPLICATES:.2g}" if p == 0 else f"{p:.3g}"


def significance(
    df: pd.DataFrame, metric: str = "metric.robustness", images: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Every pair of configurations: mean A - mean B with its 95% bootstrap interval over seeds and images
    (:func:`radae.analysis.intervals.difference_interval`), the Holm-adjusted bootstrap p and "yes"/"no"
    (adjusted p < 0.05), "n/a" when a side has fewer than 2 seeds."""
    rows = with_config(completed(df)) if len(df) else df
    if metric not in rows or rows.empty:
        return pd.DataFrame(columns=SIGNIFICANCE_COLUMNS)
    groups = [(g[LABEL_COLUMN].iloc[0], samples(g, metric, images)) for _, g in rows.groupby(KEY_COLUMN, sort=False)]
    pairs = [
        (la, lb, a, b, intervals.difference_interval(b, a, metric))
        for i, (la, a) in enumerate(groups)
        for lb, b in groups[i + 1 :]
    ]
    adjusted = holm([iv.p for *_, iv in pairs])
    return pd.DataFrame.from_records(
        [
            {
                "configuration A": la,
                "configuration B": lb,
                "n": f"{a.seeds} / {b.seeds}",
                "mean A - mean B [95%]": intervals.fmt(iv, 4, signed=True),
                "p (Holm)": _p_text(ph),
                "significant": "n/a" if not math.isfinite(ph) else ("yes" if ph < 0.05 else "no"),
            }
            for (la, lb, a, b, iv), ph in zip(pairs, adjusted, strict=True)
        ],
        columns=SIGNIFICANCE_COLUMNS,
    )


# Columns that must hold one value over all rows placed in one table (budget, protocol, FID network).
LIKE_WITH_LIKE = (
    "config.data.name",
    "config.data.resize",
    "config.data.train_limit",
    "config.train.epochs",
    "config.train.batch_size",
    "config.eval.images",
    "config.eval.trials",
    "config.eval.attack_steps",
    "config.eval.attack_impl",
    "config.eval.fid_samples",
    "config.eval.fid_runs",
    "config.eval.seed",  # the attacked images and random starts: intervals pair configurations by image
    "fid_network_sha256",
)


class NotComparableError(ValueError):
    """Rows of different budgets, protocols or FID networks asked to share one table."""


def check_comparable(df: pd.DataFrame) -> None:
    """Raise :class:`NotComparableError` naming the column and each sweep's value when the completed rows
    differ in any :data:`LIKE_WITH_LIKE` column. A column no row records is not checked; a config
    value an older sweep's rows do not record counts as RunConfig's default."""
    rows = completed(df).copy()
    defaults = RunConfig().flat()
    for col in LIKE_WITH_LIKE:
        if col not in rows or rows[col].isna().all():
            continue
        key = col.removeprefix("config.")
        if col != key and key in defaults:  # not recorded by an older sweep: it ran with the default
            rows[col] = rows[col].astype(object).where(rows[col].notna(), defaults[key])
        vals = {value_text(v) for v in rows[col]}
        if len(vals) > 1:
            by_sweep = (
                rows.groupby("sweep_id")[col].agg(lambda v: ", ".join(sorted({value_text(x) for x in v})))
                if "sweep_id" in rows
                else pd.Series(dtype=str)
            )
            detail = "; ".join(f"{sid}: {v}" for sid, v in by_sweep.items()) or ", ".join(sorted(vals))
            raise NotComparableError(f"the rows differ in {col} ({detail}): they cannot share one table")


def budget(df: pd.DataFrame) -> dict[str, str]:
    """What the numbers cost: epochs, device, seeds, data, evaluation protocol, wall time, rows."""

    def values(col: str) -> str:
        if col not in df:
            return "not recorded"
        vals = sorted({value_text(v) for v in df[col].dropna()})
        return ", ".join(vals) if vals else "not recorded"

    done = with_config(completed(df))
    # a config_key hashes the searched params: it names a configuration within its own sweep only
    # (the factor sweeps share their searched params and differ by --set overrides)
    by = [c for c in ("sweep_id", "config_key") if c in done]
    per_config = done.groupby(by).size() if len(done) else pd.Series(dtype=int)
    seeds = (
        values("seed")
        if "seed" in df
        else values("param.seed")
        if "param.seed" in df
        else "one run per configuration (no seed column)"
    )
    statuses = df["status"].value_counts().to_dict() if "status" in df else {}
    wall = pd.to_numeric(df.get("wall_seconds", pd.Series(dtype=float)), errors="coerce").dropna()
    span = ""
    if {"started_at", "finished_at"} <= set(df.columns):
        start, end = (
            pd.to_numeric(df["started_at"], errors="coerce").min(),
            pd.to_numeric(df["finished_at"], errors="coerce").max(),
        )
        if math.isfinite(start) and math.isfinite(end):
            span = f"; first start to last finish {(end - start) / 60:.1f} min"
    return {
        "sweep": values("sweep_id"),
        "rows": ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or str(len(df)),
        "data": f"{values('config.data.name')} (resize: {values('config.data.resize')}, train_limit: {values('config.data.train_limit')})",
        "epochs": values("config.train.epochs"),
        "device": f"{values('config.train.device')} (executor {values('executor')})",
        "seeds": f"{seeds}; runs per configuration: "
        + (f"{per_config.min()}-{per_config.max()}" if len(per_config) else "none completed"),
        "evaluation": f"{values('config.eval.images')} images x {values('config.eval.trials')} random starts, "
        f"{values('config.eval.attack_steps')} attack steps, FID on {values('config.eval.fid_samples')} samples "
        f"x {values('config.eval.fid_runs')} runs",
        "FID feature network": f"{', '.join(sorted({FID_NETWORKS[c] for c in FID_NETWORKS if c in df and df[c].notna().any()})) or 'none'}"
        + (f" (sha256 {values('fid_network_sha256')})" if "fid_network_sha256" in df else ""),
        "wall time": f"{wall.sum() / 60:.1f} min summed over trials{span}" if len(wall) else "not recorded",
    }


def markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""

    def cell(v) -> str:
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(cell(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def reproduction_markdown(df: pd.DataFrame, command: str, images: pd.DataFrame | None = None) -> str:
    """``docs/reproduction.md``: budget, paper tables 1-4 with radae beside the paper, trends, significance.

    ``images``: the sweeps' per-image tables (:mod:`radae.analysis.samples`); None: intervals from the rows'
    per-trial means and stds (the parametric fallback of :mod:`radae.analysis.intervals`).

    Raises :class:`NotComparableError` when the rows (possibly of several sweeps) differ in budget,
    protocol or FID network (:func:`check_comparable`)."""
    check_comparable(df)
    b = budget(df)
    fid_col = fid_metric(completed(df))
    fid_warning = (
        "radae's FID uses the project's **classifier** features, the paper's Inception-v3: the FID columns "
        "are not comparable across the two (each cell names its network)."
        if fid_col == "metric.fid_classifier_mean"
        else "Each FID cell names its feature network."
    )
    parts = [
        "# Reproduction of the paper's tables 1-4 (generated)",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from the stored rows of sweep(s) `{b['sweep']}` by:",
        "",
        f"```bash\n{command}\n```",
        "",
        "Do not edit by hand: rerun the command. Paper numbers: " + paper.SOURCE + ".",
        "",
        "## Budget",
        "",
        markdown(pd.DataFrame({"": list(b), "value": list(b.values())})),
        "",
        "## How to read",
        "",
        "- Latent attack: MS-SSIM(x_t, recon x_a), lower = more robust. Max-damage attack: MS-SSIM(recon x, recon x_a), "
        "higher = more robust. λ is the L2 budget of the attack (pixels in [0, 1]).",
        "- radae's values: `mean [95% interval]`, the interval from a bootstrap over the training seeds and the "
        "attacked images of a configuration (seeds resampled with their spread expanded by sqrt(S/(S-1)), images "
        "resampled once per replicate, percentiles clipped to the metric's range): "
        + (
            "from the sweeps' per-image values."
            if images is not None and not images.empty
            else "these rows carry no per-image values, so the image level is drawn from each trial's mean, std "
            "(over images x starts) and number of images (parametric)."
        )
        + ' With 2 seeds the seed level is barely estimated: docs/evaluation.md, "Intervals". `(n=1)` is one run.',
        "- `MS-SSIM paper formula` is the authors' metric (comparable with the paper's rows); `MS-SSIM standard` is "
        "radae's standard MS-SSIM, shown for reference. `not run`: the sweep did not train that configuration; "
        "`not recorded`: the sweep's rows lack that metric.",
        f"- {fid_warning}",
        "",
        "## Table 1: models (MNIST)",
        "",
        markdown(table1(df, images)),
        "",
        "radae rows: `model.name` vae / beta-vae / beta-tcvae / lipschitz-vae / se / avae; unimodal robust AE = rae with K=1 at alpha 0.95; "
        "robust GMM AE = rae with K=10 at alpha 0.95; both trained with FGSM (`adv.method fgsm`); the PGD-trained "
        "row is rae at K=10, alpha 0.95 with `adv.method pgd`. Paper rows: " + paper.TABLE1_CITATION + ".",
        "",
        "## Table 2: number of modes K (alpha 0.95)",
        "",
        markdown(table2(df, images)),
        "",
        "## Table 3: coupling alpha (K = 10)",
        "",
        markdown(table3(df, images)),
        "",
        paper.SENSITIVITY_NOTE,
        "",
        *_visibility_and_decoder_section(df),
        "## Trends",
        "",
        "Robustness R (radae/objective.py; `robustness` in the standard MS-SSIM, `robustness_paper` in the "
        "paper's formula; higher = more robust) and classifier FID (lower = better) along each axis, mean [95% "
        "interval] over seeds and images, and the least-squares slope on the axis value over all runs with its 95% CI.",
        "",
        *_trend_section(df, images),
        "## Which differences are significant",
        "",
        f"Robustness R between every pair of configurations of one table: {TEST_NAME}. "
        "`n/a`: a configuration has fewer than 2 seeds.",
        "",
        "### Table 2 (K)",
        "",
        markdown(significance(_concat(table2_rows(df)), images=images)),
        "",
        "### Table 3 (alpha)",
        "",
        markdown(significance(_concat(table3_rows(df)), images=images)),
        "",
    ]
    return "\n".join(parts)


def _concat(pairs: Sequence[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    frames = [rows for _, rows in pairs if len(rows)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# Metrics of the trend tables: robustness in both MS-SSIMs (higher = more robust) and FID (lower = better).
TREND_METRICS = ("metric.robustness", "metric.robustness_paper", "metric.fid_classifier_mean")


def _trend_section(df: pd.DataFrame, images: pd.DataFrame | None = None) -> list[str]:
    out = []
    for which, title in (("K", "K at alpha 0.95"), ("alpha", "alpha at K 10")):
        tables = [trend(df, which, m, images) for m in TREND_METRICS if m in df]
        if not tables:
            continue
        joined = tables[0]
        for t in tables[1:]:
            joined = joined.merge(t.drop(columns="n"), on=which)
        slopes = [
            f"- {m.removeprefix('metric.')}: {t.attrs.get('slope', 'fewer than 3 runs or 2 values')}"
            for m, t in zip([m for m in TREND_METRICS if m in df], tables, strict=True)
        ]
        out += [f"### {title}", "", markdown(joined), "", "Least-squares slopes:", "", *slopes, ""]
    return out


# MS-SSIM(x, x_a), how visible each attack's perturbation is (tables 2 and 3), and the decoder quality
# MS-SSIM(x, recon x) / MS-SSIM(x_a, recon x_a) (table 4): variant -> metric names in column order.
VISIBILITY_COLUMNS = [
    *(f"latent x-x_a λ={lv}" for lv in paper.LEVELS),
    *(f"max-damage x-x_a λ={lv}" for lv in paper.LEVELS),
]
VISIBILITY_METRICS = {
    variant: [f"{attack}_msssim{tag}_x_xa_l{lv}_mean" for attack in ("latent", "max_damage") for lv in paper.LEVELS]
    for variant, tag in (("MS-SSIM paper formula", "_paper"), ("MS-SSIM standard", ""))
}
DECODER_COLUMNS = [
    "clean x-rec x",
    *(f"latent x_a-rec x_a λ={lv}" for lv in paper.LEVELS),
    *(f"max-damage x_a-rec x_a λ={lv}" for lv in paper.LEVELS),
]
DECODER_METRICS = {
    variant: [
        f"clean_msssim{tag}_x_recx_mean",
        *(f"{attack}_msssim{tag}_xa_recxa_l{lv}_mean" for attack in ("latent", "max_damage") for lv in paper.LEVELS),
    ]
    for variant, tag in (("MS-SSIM paper formula", "_paper"), ("MS-SSIM standard", ""))
}


def _metric_table(
    entries: Sequence[tuple[str, Sequence[float] | None, pd.DataFrame]],
    first: str,
    columns: Sequence[str],
    metrics: Mapping[str, Sequence[str]],
) -> pd.DataFrame:
    """One block per entry: the paper's cells (two decimals) then radae's mean ± CI per MS-SSIM variant."""
    records = []
    for name, ref, rows in entries:
        cells = [f"{v:.2f}" for v in ref] if ref is not None else [""] * len(columns)
        records.append({first: name, "source": "paper", **dict(zip(columns, cells, strict=True))})
        for variant, names in metrics.items():
            label = f"radae, {variant}" + (f" (n={len(rows)})" if len(rows) else "")
            values = [_stat(rows, f"metric.{m}") for m in names] if len(rows) else [NOT_RUN] * len(columns)
            records.append({first: name, "source": label, **dict(zip(columns, values, strict=True))})
    return pd.DataFrame.from_records(records, columns=[first, "source", *columns])


def visibility(df: pd.DataFrame, which: str) -> pd.DataFrame:
    """MS-SSIM(x, x_a) of both attacks along K (``which="K"``, table 2) or alpha (``"alpha"``, table 3),
    the paper's columns beside radae's: how visible a lambda's perturbation is (lower = more visible)."""
    if which == "K":
        pairs, refs, first = table2_rows(df), [paper.TABLE2[k] for k in paper.TABLE2_K], "K (alpha 0.95)"
    else:
        pairs, refs, first = table3_rows(df), [paper.TABLE3[a] for a in paper.TABLE3_ALPHA], "alpha (K 10)"
    entries = [
        (label, (*ref.latent_x_xa, *ref.max_damage_x_xa), rows) for (label, rows), ref in zip(pairs, refs, strict=True)
    ]
    return _metric_table(entries, first, VISIBILITY_COLUMNS, VISIBILITY_METRICS)


def table4(df: pd.DataFrame) -> pd.DataFrame:
    """Paper table 4 (MNIST): decoder quality, MS-SSIM(x, recon x) of clean images and MS-SSIM(x_a, recon x_a)
    under each attack (higher = better), per model of table 1 that table 4 has."""
    entries = []
    for ref in paper.TABLE4:
        model, where = paper.TABLE1_MATCH[ref.model]
        entries.append((ref.model, (ref.clean, *ref.latent, *ref.max_damage), select(df, model, at_defaults(where))))
    return _metric_table(entries, "model", DECODER_COLUMNS, DECODER_METRICS)


def _visibility_and_decoder_section(df: pd.DataFrame) -> list[str]:
    return [
        "## Perturbation visibility MS-SSIM(x, x_a) (tables 2 and 3)",
        "",
        "How much each attack changed the input (1 = invisible, lower = more visible); it calibrates what a given "
        "λ did. Paper rows: " + paper.TABLE2_CITATION + " and " + paper.TABLE3_CITATION + ".",
        "",
        markdown(visibility(df, "K")),
        "",
        markdown(visibility(df, "alpha")),
        "",
        "## Table 4: decoder quality (MNIST)",
        "",
        "MS-SSIM(x, recon x) of clean test images, and MS-SSIM(x_a, recon x_a) of the adversarial inputs "
        "(higher = better). Paper rows: " + paper.TABLE4_CITATION + ".",
        "",
        markdown(table4(df)),
        "",
    ]
