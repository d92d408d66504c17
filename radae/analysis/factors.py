"""The factor table: what each training factor changes, B - A with a 95% interval over seeds and images, per sweep.

A *factor* is a pair of selections of completed rows, B (the factor switched) and A (the reference),
each on top of the same fixed point: K 10, alpha 0.95, FGSM training and every other training setting
at radae's defaults (:func:`radae.analysis.tables.at_defaults`), so a row of another factor's sweep never
enters a comparison by accident. For each factor and metric the table shows
``mean(B) - mean(A) [95% interval]`` (:func:`radae.analysis.intervals.difference_interval`: a bootstrap over
the seeds and the attacked images, paired by image when per-image values are given, else parametric
from each trial's mean, std and n; clipped to the metric's range of differences), n of each side and
the sweep ids behind B, plus B's own max-damage MS-SSIM (paper formula) at lambda 3 and 5
beside the paper's 0.82 / 0.69 (table 1, robust GMM AE), the gap this table explains.

Metrics (higher = more robust unless said): R = ``robustness`` (radae/objective.py) in the
standard MS-SSIM and in the paper's formula; MD = max-damage MS-SSIM(recon x, recon x_a), paper
formula; LAT = latent MS-SSIM(x_t, recon x_a), paper formula, lower = more robust; FID on radae's
classifier features, lower = better (not the paper's Inception FID).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from radae.analysis import intervals, paper
from radae.analysis.aggregate import fmt
from radae.analysis.samples import samples
from radae.analysis.tables import VARIANTS, at_defaults, check_comparable, markdown, select

# The fixed point every factor is measured at (paper table 1's robust GMM AE).
REFERENCE = {"prior.num_modes": 10, "loss.alpha": 0.95, "adv.method": "fgsm"}
_OURS = next(row for row in paper.TABLE1 if row.model.startswith("robust GMM AE"))
PAPER_MD = dict(zip(paper.LEVELS, _OURS.max_damage, strict=True))  # paper formula, lambda -> MS-SSIM


@dataclass(frozen=True)
class Factor:
    """One comparison: rows at ``REFERENCE + b`` against rows at ``REFERENCE + a`` (other settings at defaults)."""

    label: str
    b: Mapping[str, object]
    a: Mapping[str, object] = field(default_factory=dict)

    def rows(self, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(B rows, A rows) of ``df``: completed rae rows matching each selection."""
        return (
            select(df, "rae", at_defaults({**REFERENCE, **self.b})),
            select(df, "rae", at_defaults({**REFERENCE, **self.a})),
        )


K25 = {"prior.num_modes": 25}
K1 = {"prior.num_modes": 1}
FACTORS = (
    Factor("PGD (5 steps) vs FGSM", {"adv.method": "pgd"}),
    Factor("no adversarial training vs FGSM", {"adv.method": "none"}),
    Factor("FGSM eps 0.15, step 0.1875 vs 0.3, 0.375", {"adv.eps": 0.15, "adv.step_size": 0.1875}),
    Factor("FGSM eps 0.45, step 0.5625 vs 0.3, 0.375", {"adv.eps": 0.45, "adv.step_size": 0.5625}),
    Factor("loss.adv_rec on vs off", {"loss.adv_rec": True}),
    Factor("lambda_REC 100 vs 500", {"loss.rec_weight": 100.0}),
    Factor("lambda_REC 2000 vs 500", {"loss.rec_weight": 2000.0}),
    Factor("L_REC latent noise 0.3 vs 0.1", {"loss.latent_noise": 0.3}),
    Factor("KS weighting separate (authors) vs eq. 6", {"loss.ks_weighting": "separate"}),
    Factor("lr 2e-4 (authors) vs 2e-3", {"train.lr": 0.0002}),
    Factor("alpha 0.95 vs 0.1", {}, {"loss.alpha": 0.1}),
    Factor("alpha 1.0 vs 0.1", {"loss.alpha": 1.0}, {"loss.alpha": 0.1}),
    Factor("K 10 vs K 1 (auto placement)", {}, K1),
    Factor("K 25 vs K 1 (auto placement: spread 6 apart)", K25, K1),
    Factor("K 25 roll (authors) vs K 1", {**K25, "prior.placement": "roll"}, K1),
    Factor("K 25 sobol-doubling (authors) vs K 1", {**K25, "prior.placement": "sobol-doubling"}, K1),
    Factor("K 25 roll vs K 25 auto", {**K25, "prior.placement": "roll"}, K25),
    Factor("K 25 sobol-doubling vs K 25 auto", {**K25, "prior.placement": "sobol-doubling"}, K25),
)

# The paper-formula metric names of the paper's tables (radae.analysis.tables.VARIANTS), "metric." prefixed.
_LATENT, _DAMAGE = (f"metric.{name}" for name in VARIANTS["MS-SSIM paper formula"])
# Column -> metric (B - A cells).
DIFFERENCES = {
    "R standard": "metric.robustness",
    "R paper formula": "metric.robustness_paper",
    "MD paper λ=3": _DAMAGE.format(level=3),
    "MD paper λ=5": _DAMAGE.format(level=5),
    "LAT paper λ=5": _LATENT.format(level=5),
    "FID classifier": "metric.fid_classifier_mean",
}


def _values(rows: pd.DataFrame, metric: str) -> list[float]:
    return rows[metric].astype(float).dropna().tolist() if metric in rows else []


def _cell(iv: intervals.Interval) -> str:
    if iv.estimate != iv.estimate:  # NaN: a side has no values
        return "—"
    return intervals.fmt(iv, signed=True) if iv.low == iv.low else f"{iv.estimate:+.3f} (no interval)"


def _level(rows: pd.DataFrame) -> str:
    cells = []
    for level in (3, 5):
        vals = pd.Series(_values(rows, _DAMAGE.format(level=level)))
        cells.append(fmt(float(vals.mean())) if len(vals) else "—")
    return " / ".join(cells)


@dataclass(frozen=True)
class Difference:
    """One factor's measured effect: per :data:`DIFFERENCES` column, mean(B) - mean(A) with its 95% interval."""

    factor: Factor
    b: pd.DataFrame
    a: pd.DataFrame
    effects: dict[str, intervals.Interval]

    @property
    def sweeps(self) -> list[str]:
        return sorted(set(self.b["sweep_id"].astype(str))) if "sweep_id" in self.b else []


def differences(
    df: pd.DataFrame, factors: tuple[Factor, ...] = FACTORS, images: pd.DataFrame | None = None
) -> list[Difference]:
    """Each factor with rows on both sides, its effects B - A (:func:`radae.analysis.intervals.difference_interval`;
    ``images``: the sweeps' per-image tables, None: the parametric fallback).

    Raises :class:`radae.analysis.tables.NotComparableError` when the rows differ in budget, protocol or FID
    network (a factor measured at another budget is not a difference of that factor)."""
    check_comparable(df)
    out = []
    for f in factors:
        b, a = f.rows(df)
        if b.empty or a.empty:
            continue
        effects = {
            col: intervals.difference_interval(samples(a, m, images), samples(b, m, images), m)
            for col, m in DIFFERENCES.items()
        }
        out.append(Difference(f, b, a, effects))
    return out


LEVEL_COLUMN = f"B: MD paper λ=3 / 5 (paper {PAPER_MD[3]:.2f} / {PAPER_MD[5]:.2f})"


def factor_table(
    df: pd.DataFrame, factors: tuple[Factor, ...] = FACTORS, images: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per factor with data on both sides: B - A per metric, n, B's MD level and sweeps."""
    records = [
        {
            "factor (B vs A)": d.factor.label,
            "n B / A": f"{len(d.b)} / {len(d.a)}",
            **{col: _cell(d.effects[col]) for col in DIFFERENCES},
            LEVEL_COLUMN: _level(d.b),
            "B's sweeps": ", ".join(d.sweeps),
        }
        for d in differences(df, factors, images)
    ]
    columns = ["factor (B vs A)", "n B / A", *DIFFERENCES, LEVEL_COLUMN, "B's sweeps"]
    return pd.DataFrame.from_records(records, columns=columns)


def factor_markdown(
    df: pd.DataFrame, command: str, figure: str | None = None, images: pd.DataFrame | None = None
) -> str:
    """The generated factor-table block of docs/robustness-gap.md (table, reference level, command, and
    the forest plot at the relative path ``figure`` when given)."""
    table = factor_table(df, images=images)
    ref = select(df, "rae", at_defaults(REFERENCE))
    picture = [f"![B - A per factor, 95% intervals over seeds and images]({figure})", ""] if figure else []
    return "\n".join(
        [
            f"Generated by `{command}` (do not edit by hand: rerun it).",
            "",
            f"Reference A unless the row says otherwise: K 10, alpha 0.95, FGSM, radae's defaults (n = {len(ref)}; "
            f"MD paper λ=3 / 5 {_level(ref)} against the paper's {PAPER_MD[3]:.2f} / {PAPER_MD[5]:.2f}). "
            "Cells: mean(B) - mean(A) [95% interval], a bootstrap over the seeds and the attacked images "
            '(docs/evaluation.md, "Intervals"; '
            + (
                "per-image values, paired by image"
                if images is not None and not images.empty
                else "parametric from each trial's mean, std and number of images: these rows carry no per-image values"
            )
            + "). R and MD: higher = more robust; LAT: lower = more robust; FID: classifier features, lower = better.",
            "",
            *picture,
            markdown(table),
        ]
    )
