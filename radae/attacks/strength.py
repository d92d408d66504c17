"""Strength probe: how a batched attack's objective compares with per-image L-BFGS-B on a few of its rows.

What it measures:
    strength(lambda) = mean_r J_batched(r) / mean_r J_LBFGSB(r) for an attack that maximises J
    (max damage), the inverse ratio for one that minimises it (latent): > 1 means the batched
    attack reached the stronger adversarial examples. Rows r are the first ``images`` images of
    trial 0 at that lambda; L-BFGS-B starts from the very start the batched attack's first restart
    used (:meth:`radae.attacks.base.Attack.run` draws those first), so both optimise the same
    problem from the same point.
Reference optimiser:
    :func:`radae.attacks.lbfgsb.lbfgsb_one` with SciPy's default tolerances (factr 1e7,
    pgtol 1e-5) and the authors' history size per attack; box as bounds, ball by rescaling.
Shapes:
    ``x`` (N, C, H, W) in [0, 1], ``const`` the attack's ``prepare`` output for ``x``; ``res`` the
    batched :class:`AttackResult` of ``x``; ``first_starts`` the (R, C, H, W) first-restart starts.
"""

from __future__ import annotations

from typing import Any

import torch

from radae.attacks.base import Attack, AttackResult
from radae.attacks.lbfgsb import AUTHORS_SETTINGS, LBFGSBSettings, lbfgsb_one


def reference_settings(name: str) -> LBFGSBSettings:
    """SciPy's default tolerances with the authors' L-BFGS-B history size for attack ``name``."""
    return LBFGSBSettings(maxcor=AUTHORS_SETTINGS[name].maxcor, factr=1e7, pgtol=1e-5)


def strength(ours: float, theirs: float, sign: float) -> float:
    """strength of the module docstring from the two mean objectives: ``ours / theirs`` for an attack that
    maximises (``sign`` -1), ``theirs / ours`` for one that minimises (+1); > 1 means ours is the stronger."""
    return theirs / max(ours, 1e-12) if sign > 0 else ours / max(theirs, 1e-12)


def strength_vs_lbfgsb(
    attack: Attack,
    model: Any,
    x: torch.Tensor,
    const: torch.Tensor,
    res: AttackResult,
    first_starts: torch.Tensor,
    images: int,
) -> dict[float, float]:
    """strength(lambda) for every lambda of ``res`` (see the module docstring), on ``images`` images each."""
    settings = reference_settings(attack.name)
    out = {}
    for li in res.level_index.unique().tolist():
        rows = ((res.level_index == li) & (res.trial_index == 0)).nonzero().flatten()[:images]
        ref = [
            lbfgsb_one(attack, model, x[i], const[i], float(res.level[r]), first_starts[r], settings)[1]
            for r, i in zip(rows.tolist(), res.image_index[rows].tolist(), strict=True)
        ]
        ours, theirs = float(res.loss[rows].mean()), sum(ref) / len(ref)
        out[float(res.level[rows[0]])] = strength(ours, theirs, attack.sign)
    return out
