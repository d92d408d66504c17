"""Per-configuration statistics of a sweep's rows: mean, std, n, 95% confidence interval, significance.

A *configuration* is what was sampled apart from the training seed. Rows say which one they
belong to by ``config_key`` (a hash of the sampled params without the seed) and ``config_label``
(``prior.num_modes=10 loss.alpha=0.95``) when the sweep repeats configurations over seeds; older
rows without those columns are grouped by their ``param.*`` columns (``param.seed`` excluded).
Only ``completed`` rows enter the statistics.

For a metric with values x_1..x_n of one configuration (pure pandas/numpy/scipy, no Ray)::

    mean = (1/n) sum x_i
    std  = sqrt( sum (x_i - mean)^2 / (n - 1) )            (sample std, ddof 1; NaN for n < 2)
    CI95 = mean +- t_{0.975, n-1} * std / sqrt(n)          (Student t; NaN for n < 2)

Differences between configurations (:func:`compare`): Welch's two-sided t-test (unequal variances,
``scipy.stats.ttest_ind(equal_var=False)``) for every pair of configurations with n >= 2 each,
p-values adjusted for the number of pairs with Holm's step-down correction, significant when the
adjusted p < alpha (0.05). A pair where either side has n < 2 is "n/a" (no variance estimate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

CONFIDENCE = 0.95
ALPHA = 0.05
TEST_NAME = "Welch's two-sided t-test, Holm-corrected over all pairs of configurations, alpha 0.05"
KEY, LABEL = "config_key", "config_label"
SEED_COLUMNS = ("seed", "param.seed")


class AggregateError(ValueError):
    """The table cannot be aggregated as asked; the message names the column."""


def completed(df: pd.DataFrame) -> pd.DataFrame:
    """The rows with status ``completed`` (all rows when there is no status column)."""
    if "status" not in df:
        return df.reset_index(drop=True)
    return df[df["status"] == "completed"].reset_index(drop=True)


def searched_params(df: pd.DataFrame) -> list[str]:
    """The ``param.*`` columns that define a configuration (the seed excluded), in table order."""
    return [c for c in df.columns if c.startswith("param.") and c not in SEED_COLUMNS]


def value_text(value) -> str:
    """``10.0 -> "10"``, ``0.95 -> "0.95"``, other values as ``str``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def label_of(row: pd.Series, params: Sequence[str]) -> str:
    """``prior.num_modes=10 loss.alpha=0.95`` from a row's ``param.*`` values."""
    return " ".join(f"{p.removeprefix('param.')}={value_text(row[p])}" for p in params) or "(no searched params)"


def with_config(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``config_key`` and ``config_label`` filled in (from ``param.*`` where absent)."""
    out = df.copy()
    params = searched_params(out)
    if KEY not in out or out[KEY].isna().any():
        derived = out.apply(lambda r: label_of(r, params), axis=1) if len(out) else pd.Series(dtype=str)
        out[KEY] = out[KEY].fillna(derived) if KEY in out else derived
        if LABEL not in out:
            out[LABEL] = derived
    if LABEL not in out:
        out[LABEL] = out[KEY]
    out[LABEL] = out[LABEL].fillna(out[KEY])
    return out


def t_half_width(std: float, n: int, confidence: float = CONFIDENCE) -> float:
    """Half-width ``t_{(1+c)/2, n-1} * std / sqrt(n)`` of the Student-t interval; NaN for n < 2."""
    from scipy import stats

    if n < 2 or not math.isfinite(std):
        return math.nan
    return float(stats.t.ppf((1 + confidence) / 2, n - 1) * std / math.sqrt(n))


def welch_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """``(mean(b) - mean(a), half-width)`` of Welch's interval for a difference of two means:
    ``scipy.stats.ttest_ind(b, a, equal_var=False).confidence_interval(confidence)`` (Welch-Satterthwaite
    degrees of freedom). The half-width is NaN when either side has fewer than 2 values (no variance
    estimate), 0 when both sides are constant; the difference is NaN when either side is empty.
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(a) or not len(b):
        return math.nan, math.nan
    diff = float(b.mean() - a.mean())
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan
    if a.var() == 0 and b.var() == 0:
        return diff, 0.0
    ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval(confidence)
    return diff, float(ci.high - ci.low) / 2


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The numeric ``metric.*`` columns."""
    return [c for c in df.columns if c.startswith("metric.") and pd.api.types.is_numeric_dtype(df[c])]


def summarize(df: pd.DataFrame, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per configuration: ``config_key``, ``config_label``, the ``param.*`` values, and for each
    metric ``<metric>:mean``, ``:std``, ``:n``, ``:ci_low``, ``:ci_high``, ``:ci_half`` (completed rows only;
    NaN values of a metric are left out of its n)."""
    rows = with_config(completed(df))
    metrics = list(metrics) if metrics is not None else metric_columns(rows)
    missing = [m for m in metrics if m not in rows]
    if missing:
        raise AggregateError(f"no column {missing[0]!r} in the sweep table (metrics: {metric_columns(rows)[:8]}...)")
    params = searched_params(rows)
    records = []
    for key, group in rows.groupby(KEY, sort=False, dropna=False):
        rec = {KEY: key, LABEL: group[LABEL].iloc[0], "rows": len(group)}
        rec.update({p: group[p].iloc[0] for p in params})
        for m in metrics:
            values = group[m].astype(float).dropna().to_numpy()
            n = len(values)
            mean = float(values.mean()) if n else math.nan
            std = float(values.std(ddof=1)) if n >= 2 else math.nan
            half = t_half_width(std, n)
            rec.update(
                {
                    f"{m}:mean": mean,
                    f"{m}:std": std,
                    f"{m}:n": n,
                    f"{m}:ci_half": half,
                    f"{m}:ci_low": mean - half,
                    f"{m}:ci_high": mean + half,
                }
            )
        records.append(rec)
    return pd.DataFrame.from_records(records)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given; NaN stays NaN and is not counted)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    order = sorted(idx, key=lambda i: pvalues[i])
    m, running = len(order), 0.0
    out = [math.nan] * len(pvalues)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def compare(df: pd.DataFrame, metric: str, alpha: float = ALPHA) -> pd.DataFrame:
    """Every pair of configurations on ``metric``: means, difference, Welch t, p, Holm p, significant.

    ``significant`` is "yes"/"no", or "n/a" when either configuration has fewer than 2 values.
    """
    from scipy import stats

    rows = with_config(completed(df))
    if metric not in rows:
        raise AggregateError(f"no column {metric!r} in the sweep table")
    groups = [
        (key, g[LABEL].iloc[0], g[metric].astype(float).dropna().to_numpy())
        for key, g in rows.groupby(KEY, sort=False, dropna=False)
    ]
    pairs = []
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            (ka, la, a), (kb, lb, b) = groups[i], groups[j]
            t = p = math.nan
            if len(a) >= 2 and len(b) >= 2:
                res = stats.ttest_ind(a, b, equal_var=False)
                t, p = float(res.statistic), float(res.pvalue)
            pairs.append(
                {
                    "config_a": la,
                    "config_b": lb,
                    "key_a": ka,
                    "key_b": kb,
                    "n_a": len(a),
                    "n_b": len(b),
                    "mean_a": float(np.mean(a)) if len(a) else math.nan,
                    "mean_b": float(np.mean(b)) if len(b) else math.nan,
                    "t": t,
                    "p": p,
                }
            )
    adjusted = holm([pr["p"] for pr in pairs])
    for pr, ph in zip(pairs, adjusted, strict=True):
        pr["diff"] = pr["mean_a"] - pr["mean_b"]
        pr["p_holm"] = ph
        pr["significant"] = "n/a" if not math.isfinite(ph) else ("yes" if ph < alpha else "no")
    cols = [
        "config_a",
        "config_b",
        "key_a",
        "key_b",
        "n_a",
        "n_b",
        "mean_a",
        "mean_b",
        "diff",
        "t",
        "p",
        "p_holm",
        "significant",
    ]
    return pd.DataFrame(pairs, columns=cols)


def fmt(mean: float, half: float = math.nan, n: int | None = None, digits: int = 3) -> str:
    """``0.512 ± 0.013`` (95% CI half-width), ``0.512 (n=1)`` without an interval, ``—`` without a value."""
    if mean is None or not math.isfinite(mean):
        return "—"
    text = f"{mean:.{digits}f}"
    if half is not None and math.isfinite(half):
        return f"{text} ± {half:.{digits}f}"
    return f"{text} (n={n})" if n is not None else text
