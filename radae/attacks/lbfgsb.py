"""Per-image L-BFGS-B attacks as the authors' released code runs them (``eval.attack_impl lbfgsb-authors``).

What it optimises:
    the objective of a batched attack (:class:`radae.attacks.LatentAttack` or
    :class:`radae.attacks.MaxDamageAttack`, reused through ``prepare``/``objective``), one image
    and one random start at a time, with SciPy's L-BFGS-B (Robust_GMM_DAE,
    ``attacks/latentspaceattack.py`` and ``attacks/outputattack.py``; method.md, "Evaluation").
Norm and bound:
    the box x + delta in [0, 1] goes to L-BFGS-B as bounds [-x, 1 - x]; the L2 ball is enforced
    inside the objective: it is evaluated at delta * min(1, lambda / ||delta||), and the returned
    delta is rescaled the same way (the rescaling moves towards 0, so it stays in the box).
Settings (the authors'): history m = 25 (latent) / 100 (max damage), factr = 10 (runs almost to
    convergence), pgtol SciPy's 1e-5 (latent) / 1e-20 (max damage), at most ``maxfun`` objective
    evaluations; start uniform in the L2 ball (:func:`radae.attacks.base.random_start`). The
    authors ran one start per image; ``trials`` starts are run here (``--eval.trials 1`` for theirs).
Shapes: as :meth:`radae.attacks.base.Attack.run`; the result is an :class:`AttackResult` with the
    same row order (lambda, trial, image), so the evaluation treats both implementations alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from radae.attacks.base import Attack, AttackResult, random_start


@dataclass(frozen=True)
class LBFGSBSettings:
    """SciPy ``fmin_l_bfgs_b`` options: history ``maxcor`` (m), ``factr``, ``pgtol``, ``maxfun``."""

    maxcor: int
    factr: float = 10.0
    pgtol: float = 1e-5
    maxfun: int = 15000


# The released code's settings per attack (latentspaceattack.py: m=25, factr=10; outputattack.py:
# m=100, factr=10, pgtol=1e-20).
AUTHORS_SETTINGS = {
    "latent": LBFGSBSettings(maxcor=25),
    "max_damage": LBFGSBSettings(maxcor=100, pgtol=1e-20),
}


def rescale_to_ball(delta: torch.Tensor, radius: float) -> torch.Tensor:
    """delta * min(1, radius / ||delta||_2): the authors' radius enforcement (one image)."""
    return delta * torch.clamp(radius / (delta.norm() + 1e-12), max=1.0)


def lbfgsb_one(
    attack: Attack,
    model: Any,
    x: torch.Tensor,
    const: torch.Tensor,
    radius: float,
    start: torch.Tensor,
    settings: LBFGSBSettings,
) -> tuple[torch.Tensor, float]:
    """L-BFGS-B on one image x (C, H, W) from ``start``; returns (x_a, natural objective at x_a).

    The objective runs in the dtype of ``x`` (the model must match); SciPy sees float64.
    """
    import scipy.optimize  # lazily: only this attack needs SciPy

    xs, c = x[None], const[None]

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        d = torch.from_numpy(v).to(xs.device, xs.dtype).view_as(xs).requires_grad_(True)
        with torch.enable_grad():
            value = attack.sign * attack.objective(model, xs + rescale_to_ball(d, radius), c).sum()
            (grad,) = torch.autograd.grad(value, d)
        return float(value.detach()), grad.detach().cpu().double().numpy().ravel()

    lower = (-xs).detach().cpu().double().numpy().ravel()
    bounds = list(zip(lower, lower + 1.0, strict=True))
    v, _, _ = scipy.optimize.fmin_l_bfgs_b(
        fun,
        start.detach().cpu().double().numpy().ravel(),
        bounds=bounds,
        m=settings.maxcor,
        factr=settings.factr,
        pgtol=settings.pgtol,
        maxfun=settings.maxfun,
    )
    delta = rescale_to_ball(torch.from_numpy(v).to(xs.device, xs.dtype).view_as(xs), radius)
    x_adv = (xs + delta).clamp(0.0, 1.0)
    with torch.no_grad():
        value = attack.objective(model, x_adv, c)
    return x_adv[0], float(value[0])


class LBFGSBAttack:
    """Runs ``attack``'s objective image by image with L-BFGS-B; same ``run`` interface as :class:`Attack`."""

    def __init__(self, attack: Attack, settings: LBFGSBSettings) -> None:
        self.attack, self.settings = attack, settings
        self.name, self.sign = attack.name, attack.sign

    def run(
        self,
        model: Any,
        x: torch.Tensor,
        levels: tuple[float, ...] | list[float],
        trials: int,
        *,
        targets: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> AttackResult:
        if any(level <= 0 for level in levels):
            raise ValueError(f"attack budgets lambda must be > 0, got {tuple(levels)}")
        n, n_lev = len(x), len(levels)
        with torch.no_grad():
            const = self.attack.prepare(model, x, targets)
        level_index = torch.arange(n_lev).repeat_interleave(trials * n)
        trial_index = torch.arange(trials).repeat_interleave(n).repeat(n_lev)
        image_index = torch.arange(n).repeat(n_lev * trials)
        level = torch.tensor(levels, dtype=x.dtype)[level_index]
        starts = random_start(x[image_index], level.to(x.device), generator)
        advs, losses = [], []
        for row, (i, r) in enumerate(zip(image_index.tolist(), level.tolist(), strict=True)):
            adv, value = lbfgsb_one(self.attack, model, x[i], const[i], r, starts[row], self.settings)
            advs.append(adv)
            losses.append(value)
            if progress is not None:
                progress(row + 1, len(image_index))
        loss = torch.tensor(losses, dtype=x.dtype, device=x.device)
        return AttackResult(torch.stack(advs), loss, level, level_index, trial_index, image_index)
