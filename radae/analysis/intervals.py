"""95% intervals of a configuration's mean, and of a difference of two configurations, from seeds AND images.

A configuration is trained over S seeds and every seed's model is attacked on the same I test images
with the same random starts (``eval.seed``: radae.evaluate picks the images and draws the starts from
it, never from ``train.seed``). A metric's value is therefore v[s, i], seed s, image i (averaged over
the image's random starts), with two sources of variance: the training seed and the image. Seeds and
images are *crossed* (every seed sees every image), so the bootstrap resamples them independently
(Owen's pigeonhole bootstrap for crossed random effects), one replicate b = 1..B at a time::

    seeds   s*_1..s*_S   drawn with replacement from the S seeds
    weights w_i          image counts of I draws with replacement from the I images, / I
    theta_b = (1/S) sum_k  sum_i w_i * v'[s*_k, i]

    v'[s, i] = v[s, i] + (c - 1) (m_s - m),   c = sqrt(S / (S - 1))      (seed deviations expanded)

with m_s the seed's image mean and m the grand mean. Resampling S values with replacement shrinks
their variance by (S - 1) / S; the expansion c undoes that (Davison & Hinkley 1997, section 3.3),
which matters with 2 or 3 seeds. The interval is the 2.5% and 97.5% percentiles of theta_b, clipped to
the metric's range (:func:`metric_range`: an MS-SSIM, R or an accuracy lives in [0, 1], an FID or an
L2 in [0, inf)), so a bounded metric never gets an interval outside its range. The point estimate is
the plain mean m.

A difference B - A uses one image weight vector per replicate for both sides (paired by image: the
images are the same), and seeds drawn for each side apart (their models are trained apart). Its
two-sided p-value is 2 min(P*(theta <= 0), P*(theta >= 0)) over the replicates (at most 1).

Rows without per-image values (older sweeps, e.g. docs/results/*.parquet) hold per trial only the mean
and std over images x starts of each metric. There the image level is parametric::

    theta_b = (1/S) sum_k ( m'[s*_k] + sd[s*_k] / sqrt(I) * z_bk ),   z_bk ~ N(0, 1)

with the same seed resampling and expansion, I = ``config.eval.images`` and sd the recorded std (over
images x starts, so at least the std of the per-image means: the image term is conservative). For R
(radae/objective.py), which has no recorded std, sd is bounded by the mean over lambda of
(sd_maxdamage + sd_latent) / 2 (the std of a sum is at most the sum of the stds); FID's level is its
``eval.fid_runs`` runs. A difference cannot be paired here (the image noise of both sides is
independent), which widens it. The clip to the range is what keeps these intervals inside [0, 1].

Limits: with S seeds the seed level of a percentile interval spans at most the expanded range of the
S seed means; with 2-3 seeds the seed variance itself is barely estimated, so these intervals are
narrower than a Student-t interval and under-cover when seeds differ a lot (a t interval with 1-2
degrees of freedom is the other extreme: wider than the metric). One seed: no interval (the seed
variance is unknown). The generator is seeded (:data:`SEED`), so a page regenerates identically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
REPLICATES = 4000
SEED = 20261203
PER_IMAGE, PARAMETRIC, SEEDS_ONLY = "seeds x images", "seeds x images (parametric)", "seeds only"
# Metric name fragment -> (low, high) of its values; the first match wins.
RANGES = (
    ("msssim", (0.0, 1.0)),
    ("robustness", (0.0, 1.0)),
    ("acc", (0.0, 1.0)),
    ("fid", (0.0, math.inf)),
    ("l2", (0.0, math.inf)),
)


def metric_range(name: str) -> tuple[float, float]:
    """The range of the metric ``name`` (``metric.`` prefix optional): (0, 1), (0, inf) or unbounded."""
    return next((r for frag, r in RANGES if frag in name), (-math.inf, math.inf))


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% percentile interval; ``method`` says which bootstrap made it."""

    estimate: float
    low: float
    high: float
    seeds: int
    method: str
    p: float = math.nan  # two-sided bootstrap p of "no difference" (differences only)

    @property
    def half(self) -> float:
        """Half the interval's width (NaN without an interval)."""
        return (self.high - self.low) / 2

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class Samples:
    """One configuration's values: per seed x image (``values`` S x I), or per seed mean, std and n."""

    values: np.ndarray | None = None  # (S, I), one row per seed, columns the shared images in one order
    images: tuple | None = None  # the image ids of ``values``'s columns (pairing needs equal ids)
    means: np.ndarray | None = None  # (S,) parametric fallback
    stds: np.ndarray | None = None  # (S,) std over images x starts; NaN: no image term
    n: int = 0  # images behind each mean

    @classmethod
    def per_image(cls, values: np.ndarray, images: tuple) -> Samples:
        values = np.asarray(values, dtype=float)
        if values.ndim != 2 or values.shape[1] != len(images) or np.isnan(values).any():
            raise ValueError(f"per-image values must be seeds x {len(images)} images without gaps, got {values.shape}")
        return cls(values=values, images=tuple(images))

    @classmethod
    def parametric(cls, means, stds, n: int) -> Samples:
        return cls(means=np.asarray(means, dtype=float), stds=np.asarray(stds, dtype=float), n=int(n))

    @property
    def seeds(self) -> int:
        return len(self.values) if self.values is not None else len(self.means)

    @property
    def seed_means(self) -> np.ndarray:
        return self.values.mean(axis=1) if self.values is not None else self.means

    @property
    def method(self) -> str:
        if self.values is not None:
            return PER_IMAGE
        return SEEDS_ONLY if np.isnan(self.stds).any() or self.n < 1 else PARAMETRIC


def _expansion(s: int) -> float:
    return math.sqrt(s / (s - 1)) if s > 1 else 1.0


def _replicates(x: Samples, rng: np.random.Generator, weights: np.ndarray | None, b: int) -> np.ndarray:
    """theta_b of the module docstring for one configuration (``weights``: B x I image weights, or None)."""
    s = x.seeds
    m = x.seed_means
    shift = (_expansion(s) - 1) * (m - m.mean())
    picks = rng.integers(s, size=(b, s))
    if x.values is not None:
        per_seed = (x.values + shift[:, None]) @ weights.T  # (S, B): each seed's weighted image mean
        return np.take_along_axis(per_seed.T, picks, axis=1).mean(axis=1)
    noise = 0.0 if x.method == SEEDS_ONLY else (x.stds / math.sqrt(x.n))[picks] * rng.standard_normal((b, s))
    return ((m + shift)[picks] + noise).mean(axis=1)


def _image_weights(n: int, rng: np.random.Generator, b: int) -> np.ndarray:
    return rng.multinomial(n, np.full(n, 1.0 / n), size=b) / n


def _percentiles(theta: np.ndarray, bounds: tuple[float, float], confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    low, high = np.quantile(theta, [tail, 1 - tail])
    return float(np.clip(low, *bounds)), float(np.clip(high, *bounds))


def mean_interval(
    x: Samples, metric: str = "", *, confidence: float = CONFIDENCE, replicates: int = REPLICATES
) -> Interval:
    """The configuration's mean with its bootstrap interval (NaN bounds with fewer than 2 seeds)."""
    est = float(x.seed_means.mean()) if x.seeds else math.nan
    if x.seeds < 2:
        return Interval(est, math.nan, math.nan, x.seeds, x.method if x.seeds else SEEDS_ONLY)
    rng = np.random.default_rng(SEED)
    weights = _image_weights(x.values.shape[1], rng, replicates) if x.values is not None else None
    low, high = _percentiles(_replicates(x, rng, weights, replicates), metric_range(metric), confidence)
    return Interval(est, low, high, x.seeds, x.method)


def difference_interval(
    a: Samples, b: Samples, metric: str = "", *, confidence: float = CONFIDENCE, replicates: int = REPLICATES
) -> Interval:
    """mean(B) - mean(A) with its bootstrap interval; paired by image when both sides have per-image values
    on the same images, else each side resampled on its own (the parametric level for rows without them)."""
    est = float(b.seed_means.mean() - a.seed_means.mean()) if a.seeds and b.seeds else math.nan
    if a.seeds < 2 or b.seeds < 2:
        return Interval(est, math.nan, math.nan, min(a.seeds, b.seeds), SEEDS_ONLY)
    rng = np.random.default_rng(SEED)
    paired = a.values is not None and b.values is not None and a.images == b.images
    if paired:
        w = _image_weights(len(a.images), rng, replicates)
        wa = wb = w
        method = f"{PER_IMAGE}, paired by image"
    else:
        wa = _image_weights(a.values.shape[1], rng, replicates) if a.values is not None else None
        wb = _image_weights(b.values.shape[1], rng, replicates) if b.values is not None else None
        method = PARAMETRIC if SEEDS_ONLY not in (a.method, b.method) else SEEDS_ONLY
    theta = _replicates(b, rng, wb, replicates) - _replicates(a, rng, wa, replicates)
    lo, hi = metric_range(metric)
    low, high = _percentiles(theta, (lo - hi, hi - lo), confidence)
    p = min(1.0, 2 * min(float((theta <= 0).mean()), float((theta >= 0).mean())))
    return Interval(est, low, high, min(a.seeds, b.seeds), method, p)


def fmt(iv: Interval, digits: int = 3, signed: bool = False) -> str:
    """``0.512 [0.430, 0.588]``; ``0.512 (n=1)`` without an interval; ``—`` without a value."""
    if not math.isfinite(iv.estimate):
        return "—"
    sign = "+" if signed else ""
    text = f"{iv.estimate:{sign}.{digits}f}"
    if math.isfinite(iv.low) and math.isfinite(iv.high):
        return f"{text} [{iv.low:{sign}.{digits}f}, {iv.high:{sign}.{digits}f}]"
    return f"{text} (n={iv.seeds})"
