"""The authors' evaluation protocol, whole, as a distribution of the numbers it prints.

What their released scripts do (Robust_GMM_DAE ``attacks/outputattack.py``, ``attacks/latentspaceattack.py``):

- one test image (a fixed index of a shuffled first batch: a random image, with no seed) and, for
  the latent attack, the next image of another class in that batch as the target;
- ``restarts`` L-BFGS-B runs on that one image (m 100 / 25, factr 10, pgtol 1e-20 / 1e-5), each from
  a start of the authors' distribution :func:`authors_start` (direction uniform, norm uniform on
  (0, lambda), not clipped to the box: L-BFGS-B clips it to the bounds), the radius enforced by
  rescaling inside the objective (:func:`radae.attacks.lbfgsb.lbfgsb_one`);
- the model keeps its latent noise on in every decode (std 0.4 in the latent script, 0.004 in the
  max-damage one: :class:`radae.attacks.NoisyDecoding`), the clean reconstruction included;
- the printed number is the plain mean over the restarts, of the paper's MS-SSIM formula
  (:func:`radae.metrics.ms_ssim_paper`) of the attack's pair: MS-SSIM(x_t, recon x_a) for the
  latent attack, MS-SSIM(recon x, recon x_a) for max damage; beside it MS-SSIM(x, x_a) and
  ||x_a - x||_2, how visible the perturbation is (tables 2-3's extra columns).

Each lambda ran as its own process, so each number the paper prints is one draw of an image.
:func:`draw_distribution` repeats the whole protocol on ``draws`` independent images and returns one
row per (draw, attack, lambda): the distribution of the number their protocol would print for this
model. :func:`percentile` says where a value (the paper's) falls in it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from radae.attacks import ATTACKS, AUTHORS_SETTINGS, LBFGSBSettings, NoisyDecoding, lbfgsb_one
from radae.metrics import l2_distance, ms_ssim_paper

# Latent noise the released scripts leave on, per attack.
AUTHORS_DECODE_NOISE = {"latent": 0.4, "max_damage": 0.004}


@dataclass(frozen=True)
class ProtocolSettings:
    """Draws (independent images), L-BFGS-B restarts per image, budgets, and the seed of everything random."""

    draws: int = 30
    restarts: int = 10
    levels: tuple[float, ...] = (3.0, 5.0)
    attacks: tuple[str, ...] = ("latent", "max_damage")
    maxfun: int = 15000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("draws", "restarts", "maxfun"):
            if getattr(self, name) < 1:
                raise ValueError(f"authors protocol: {name} must be >= 1, got {getattr(self, name)}")
        if any(level <= 0 for level in self.levels):
            raise ValueError(f"authors protocol: lambda must be > 0, got {self.levels}")
        unknown = set(self.attacks) - set(AUTHORS_DECODE_NOISE)
        if unknown:
            raise ValueError(f"authors protocol: unknown attack(s) {sorted(unknown)}; known: latent, max_damage")


def authors_start(x: torch.Tensor, radius: float, generator: torch.Generator) -> torch.Tensor:
    """``attackutils.sample_d_ball``: a uniform direction scaled by r U^(1/d) with r ~ U(1e-8, radius); not clipped."""
    d = x.numel()
    u = torch.randn(d, generator=generator, dtype=torch.float64)
    r = float(torch.rand((), generator=generator, dtype=torch.float64)) ** (1.0 / d)
    scale = 1e-8 + (radius - 1e-8) * float(torch.rand((), generator=generator, dtype=torch.float64))
    return (scale * r * u / u.norm()).view_as(x).to(x.dtype)


def one_draw(
    model: Any, x: torch.Tensor, xt: torch.Tensor, name: str, level: float, cfg: ProtocolSettings, gen: torch.Generator
) -> dict[str, float]:
    """The number the authors' script prints for one image x (C, H, W): means over ``cfg.restarts`` runs."""
    attack = ATTACKS.create(name)
    noisy = NoisyDecoding(model, AUTHORS_DECODE_NOISE[name], gen)
    base = AUTHORS_SETTINGS[name]
    settings = LBFGSBSettings(maxcor=base.maxcor, factr=base.factr, pgtol=base.pgtol, maxfun=cfg.maxfun)
    xs, ts = x[None], xt[None]
    with torch.no_grad():
        const = attack.prepare(noisy, xs, ts)[0]
    pair, vis, dist, obj = [], [], [], []
    for _ in range(cfg.restarts):
        x_adv, value = lbfgsb_one(attack, noisy, x, const, level, authors_start(x, level, gen), settings)
        with torch.no_grad():
            rec_adv = noisy.reconstruct(x_adv[None])
            ref = ts if name == "latent" else noisy.reconstruct(xs)
        pair.append(float(ms_ssim_paper(ref, rec_adv)[0]))
        vis.append(float(ms_ssim_paper(xs, x_adv[None])[0]))
        dist.append(float(l2_distance(xs, x_adv[None])[0]))
        obj.append(value)
    compared = "xt_recxa" if name == "latent" else "recx_recxa"
    return {
        f"msssim_paper_{compared}": sum(pair) / len(pair),
        "msssim_paper_x_xa": sum(vis) / len(vis),
        "l2_x_xa": sum(dist) / len(dist),
        "objective": sum(obj) / len(obj),
    }


def draw_distribution(
    model: Any,
    x: torch.Tensor,
    xt: torch.Tensor,
    cfg: ProtocolSettings,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """One row per (draw, attack, lambda) for images ``x`` (draws, C, H, W) with targets ``xt``: the protocol's outputs."""
    if len(x) != cfg.draws or xt.shape != x.shape:
        raise ValueError(f"authors protocol: need {cfg.draws} images and as many targets, got {len(x)} / {len(xt)}")
    rows, total = [], cfg.draws * len(cfg.attacks) * len(cfg.levels)
    for i in range(cfg.draws):
        for a, name in enumerate(cfg.attacks):
            for li, level in enumerate(cfg.levels):
                # Each (draw, attack, lambda) ran as its own process in the authors' runs: its own random stream.
                cell = (i * len(cfg.attacks) + a) * len(cfg.levels) + li
                gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + cell)
                rows.append(
                    {"draw": i, "attack": name, "lambda": level} | one_draw(model, x[i], xt[i], name, level, cfg, gen)
                )
                if progress is not None:
                    progress(len(rows), total)
    return rows


def percentile(values: list[float], value: float) -> tuple[float, float, float]:
    """(share of ``values`` <= ``value``, exact 95% Clopper-Pearson interval of that share), as fractions."""
    from scipy.stats import binomtest  # lazy: SciPy only for this interval

    n = len(values)
    k = sum(v <= value for v in values)
    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    return k / n, float(ci.low), float(ci.high)


def summary(values: list[float]) -> dict[str, float]:
    """Mean, sd (ddof 1) and the 5/50/95% quantiles of one cell's draws."""
    t = torch.tensor(values, dtype=torch.float64)
    q = torch.quantile(t, torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64)).tolist()
    sd = float(t.std()) if len(t) > 1 else math.nan
    return {"mean": float(t.mean()), "sd": sd, "q05": q[0], "q50": q[1], "q95": q[2]}
