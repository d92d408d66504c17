"""What a sweep optimises: robustness from the attack MS-SSIMs, and FID.

Robustness (higher is better, in [0, 1] when the MS-SSIMs are), averaged over the attack budgets
lambda of the evaluation (method.md, "Evaluation")::

    R = (1 / |L|) * sum_{lambda in L} [ MS-SSIM(recon x, recon x_a)_maxdamage,lambda
                                        + (1 - MS-SSIM(x_t, recon x_a)_latent,lambda) ] / 2

The maximum-damage term is high when the attack cannot change the reconstruction; the latent
term is high when the targeted latent attack cannot move the reconstruction to the target image.

R is computed from the STANDARD MS-SSIM (metric ``msssim``), so sweeps run before the paper's
formula was added stay comparable; it is what the objective optimises. :func:`robustness_paper`
is the same formula on the paper's MS-SSIM (``msssim_paper``, :func:`radae.metrics.ms_ssim_paper`),
reported beside it as ``robustness_paper`` for setting results next to the paper's tables; no
searcher optimises it.

Two objective modes (registry :data:`OBJECTIVES`):

- ``scalar`` maximises ``score = R - w * ln(1 + FID)`` (``w`` = ``fid_weight``, default
  :data:`FID_WEIGHT` = 0.1). The
  log keeps FIDs of different feature networks on a comparable scale and ``1 +`` keeps an FID of
  zero finite; with w = 0.1 halving an FID of 40 gains 0.07, about what the paper's best model
  gains in R over a VAE at lambda = 3. ASHA may stop trials of this mode early.
- ``pareto`` optimises (R max, FID min) with Optuna's multi-objective TPE; the Pareto front is
  exported by :func:`pareto_front` and ``dashboards/plot_sweep.py``.

The evaluator's metric names are the templates below; :func:`derive` fails naming the missing
metric rather than guessing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from radae.registry import Registry

LATENT_KEY = "latent_msssim_xt_recxa_l{level}_mean"
MAXDAMAGE_KEY = "max_damage_msssim_recx_recxa_l{level}_mean"
# The same pairs scored with the paper's MS-SSIM formula (reported, not optimised).
LATENT_PAPER_KEY = "latent_msssim_paper_xt_recxa_l{level}_mean"
MAXDAMAGE_PAPER_KEY = "max_damage_msssim_paper_recx_recxa_l{level}_mean"
# FID metrics in order of preference: Inception features when the evaluator had them, else the
# project's classifier features (named differently on purpose: they are different metrics).
FID_KEYS = ("fid_inception_mean", "fid_classifier_mean")
# Set in a trial's final report once evaluation ran; reports without it are per-epoch results,
# so a trial that ends without it was stopped early (see radae.sweep.searcher).
FINAL_KEY = "evaluated"
# w of the scalar score, for a definition that names none (the one place this default lives).
FID_WEIGHT = 0.1


class ObjectiveError(KeyError):
    """The evaluation metrics lack what the objective needs; the message names the metric."""

    def __str__(self) -> str:
        return str(self.args[0])


def level_tag(level: float) -> str:
    """``1.0 -> "1"``, ``0.5 -> "0.5"``: how a lambda appears in metric names."""
    return f"{level:g}"


def _get(metrics: Mapping[str, float], key: str) -> float:
    if key not in metrics:
        near = sorted(k for k in metrics if k.split("_")[0] == key.split("_")[0])[:8]
        raise ObjectiveError(f"evaluation metric {key!r} missing; similar: {near}")
    return float(metrics[key])


def robustness(
    metrics: Mapping[str, float],
    levels: Sequence[float],
    latent_key: str = LATENT_KEY,
    maxdamage_key: str = MAXDAMAGE_KEY,
) -> float:
    """R of the module docstring: mean over lambda of (maxdamage + 1 - latent) / 2 (standard MS-SSIM
    unless other ``{level}`` key templates are given)."""
    if not levels:
        raise ValueError("robustness needs at least one attack level lambda")
    terms = []
    for level in levels:
        tag = level_tag(level)
        damage = _get(metrics, maxdamage_key.format(level=tag))
        latent = _get(metrics, latent_key.format(level=tag))
        terms.append((damage + (1.0 - latent)) / 2.0)
    return sum(terms) / len(terms)


def robustness_paper(metrics: Mapping[str, float], levels: Sequence[float]) -> float:
    """R computed from the paper's MS-SSIM (``msssim_paper``) instead of the standard one."""
    return robustness(metrics, levels, LATENT_PAPER_KEY, MAXDAMAGE_PAPER_KEY)


def with_robustness(
    per_image: Mapping[str, Mapping[int, float]], levels: Sequence[float]
) -> dict[str, dict[int, float]]:
    """``per_image`` (metric name without ``_mean`` -> image -> value) plus ``robustness`` and ``robustness_paper``
    per image: R of the module docstring on each image's values (left out when a term is missing). R is linear
    in the MS-SSIMs, so the mean of the per-image R over images is the evaluation's R."""
    out = {name: dict(values) for name, values in per_image.items()}
    images = sorted({i for values in per_image.values() for i in values})
    for name, fn in (("robustness", robustness), ("robustness_paper", robustness_paper)):
        try:
            out[name] = {i: fn({f"{n}_mean": v[i] for n, v in per_image.items() if i in v}, levels) for i in images}
        except ObjectiveError:
            continue
    return out


def fid(metrics: Mapping[str, float]) -> float:
    """The first FID of :data:`FID_KEYS` the evaluation reported."""
    for key in FID_KEYS:
        if key in metrics and metrics[key] is not None and math.isfinite(float(metrics[key])):
            return float(metrics[key])
    raise ObjectiveError(f"no FID metric among {FID_KEYS} in the evaluation metrics")


def scalar_score(robust: float, fid_value: float, fid_weight: float) -> float:
    """``R - w * ln(1 + max(FID, 0))`` (FID can come out as -1e-15 for identical sets)."""
    return robust - fid_weight * math.log1p(max(fid_value, 0.0))


@dataclass(frozen=True)
class Objective:
    """Metric names and directions the searcher optimises."""

    name: str
    metrics: tuple[str, ...]
    modes: tuple[str, ...]
    fid_weight: float = FID_WEIGHT

    @property
    def searcher_metric(self) -> str | list[str]:
        return self.metrics[0] if len(self.metrics) == 1 else list(self.metrics)

    @property
    def searcher_mode(self) -> str | list[str]:
        return self.modes[0] if len(self.modes) == 1 else list(self.modes)

    def derive(self, metrics: Mapping[str, float], levels: Sequence[float]) -> dict[str, float]:
        """``{"robustness", "robustness_paper", "fid", "score"}`` from the evaluation metrics.

        ``score`` (and the pareto mode) use ``robustness`` (standard MS-SSIM); ``robustness_paper``
        is reported only.
        """
        r, f = robustness(metrics, levels), fid(metrics)
        return {
            "robustness": r,
            "robustness_paper": robustness_paper(metrics, levels),
            "fid": f,
            "score": scalar_score(r, f, self.fid_weight),
        }


OBJECTIVES: Registry = Registry("objective")


@OBJECTIVES.register("scalar")
def _scalar(fid_weight: float) -> Objective:
    return Objective("scalar", ("score",), ("max",), fid_weight)


@OBJECTIVES.register("pareto")
def _pareto(fid_weight: float) -> Objective:
    return Objective("pareto", ("robustness", "fid"), ("max", "min"), fid_weight)


def make_objective(name: str, fid_weight: float = FID_WEIGHT) -> Objective:
    if fid_weight < 0:
        raise ValueError(f"objective.fid_weight must be >= 0, got {fid_weight}")
    return OBJECTIVES.create(name, fid_weight=fid_weight)


def pareto_front(points: Iterable[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points of (robustness to maximise, FID to minimise).

    A point is dominated when another is at least as good in both and better in one.
    """
    pts = list(points)
    front = []
    for i, (r_i, f_i) in enumerate(pts):
        dominated = any(
            (r_j >= r_i and f_j <= f_i) and (r_j > r_i or f_j < f_i) for j, (r_j, f_j) in enumerate(pts) if j != i
        )
        if not dominated:
            front.append(i)
    return front
