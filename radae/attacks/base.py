"""What every evaluation attack shares: the L2-ball-and-box constraint, random starts, batching.

An attack perturbs test images x in [0,1]^{C x H x W} to x_a = x + delta with ||delta||_2 <= lambda
(pixel units) and x_a in [0, 1] (method.md, "Evaluation"). A subclass only states its objective
(``prepare`` computes per-image constants, ``objective`` the per-row value to minimise); this base:

- expands the images to one big batch of rows ordered (lambda, trial, image), i.e. row
  ``(l * trials + t) * n + i``, so every image, random trial and budget is optimised at once on one
  device (``batch_size`` splits that batch into chunks only to bound memory);
- draws each row's random start uniformly inside its L2 ball, then clips it to the box (clipping
  moves every coordinate towards 0, so the start stays in the ball);
- runs projected gradient descent with L2-normalised steps, the step ``step_frac * lambda``
  decaying on a cosine schedule, and keeps each row's best iterate; with ``tangent_steps`` the
  step direction first loses its parts into active box bounds and, at the ball's surface, its
  outward radial part, so the normalised step moves along the sphere instead of against it;
- with ``restarts`` k > 1, gives each row k starts (their first step lengths alternate between
  ``step_frac`` and ``step_frac / 4``: long steps and short steps fall into different basins of a
  nonconvex objective), screens them all for a quarter of the steps, and spends the remaining
  steps on each row's best (successive halving: about (k/4 + 3/4) times one start's cost);
- projects exactly onto the intersection of ball and box after every step (:func:`project_l2_box`),
  so every iterate, and the returned x_a, satisfies both constraints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class AttackResult:
    """Adversarial inputs of a batched attack, one row per (lambda, trial, image).

    ``x_adv`` (R, C, H, W) in [0, 1]; ``loss`` (R,) the attack objective in its natural sign
    (see the attack's docstring); ``level`` (R,) the lambda of each row; ``level_index``,
    ``trial_index``, ``image_index`` (R,) int64 positions in the inputs.
    """

    x_adv: torch.Tensor
    loss: torch.Tensor
    level: torch.Tensor
    level_index: torch.Tensor
    trial_index: torch.Tensor
    image_index: torch.Tensor


def project_l2_box(delta: torch.Tensor, x: torch.Tensor, radius: torch.Tensor, max_iters: int = 50) -> torch.Tensor:
    """Euclidean projection of ``delta`` onto {d : ||d||_2 <= radius, 0 <= x + d <= 1}, per row.

    KKT for min ||d - v||^2 + mu (||d||^2 - r^2) over the box give d = clip(t v, -x, 1 - x) with
    t = 1 / (1 + mu) in (0, 1]. Coordinate i contributes min(t^2 v_i^2, b_i^2) to ||d||^2 (b_i the
    bound on v_i's side), so f(t) = ||clip(t v)||^2 = t^2 S(t) + P(t), with S the sum of v_i^2 over
    unsaturated and P the sum of b_i^2 over saturated coordinates, is nondecreasing in t. The
    active-set iteration t <- sqrt((r^2 - P(t)) / S(t)) from t = 1 rises monotonically to the root
    from below (every iterate after the first is feasible) and stops, exactly, once the saturated
    set no longer changes (a handful of iterations). A final rescale by min(1, r / ||d||), which
    stays in the box, absorbs rounding. delta, x: (R, ...); radius: (R,).
    """
    shape = (-1,) + (1,) * (delta.dim() - 1)
    full = torch.minimum(torch.maximum(delta, -x), 1.0 - x)
    rows = (full.flatten(1).norm(dim=1) > radius).nonzero().flatten()
    if len(rows) == 0:
        return full
    every = len(rows) == len(delta)  # the usual case: no gather or scatter of the rows
    d0 = delta if every else delta[rows]
    xr = x if every else x[rows]
    v, xs = d0.flatten(1), xr.flatten(1)
    # Per coordinate: v_i^2 and b_i^2 side by side, so one batched mat-vec with the saturation mask
    # gives both sums of an iteration; coordinate i is saturated at t^2 once t^2 >= b_i^2 / v_i^2.
    vb = torch.empty((len(rows), 2, v.shape[1]), dtype=v.dtype, device=v.device)
    torch.mul(v, v, out=vb[:, 0])
    torch.where(v > 0, 1.0 - xs, xs, out=vb[:, 1])
    vb[:, 1].square_()
    saturates_at = vb[:, 1] / vb[:, 0]
    v2_total = vb[:, 0].sum(dim=1)
    r2 = radius[rows].square()
    t2 = torch.ones_like(r2)
    active = torch.arange(len(rows), device=v.device)  # rows whose t^2 still moves
    mask = torch.empty_like(saturates_at)
    for _ in range(max_iters):
        old = t2[active]
        torch.le(saturates_at, old.unsqueeze(1), out=mask)
        sat_v2, p_sat = torch.bmm(vb, mask.unsqueeze(2)).squeeze(2).unbind(dim=1)
        s_free = v2_total - sat_v2
        new = ((r2 - p_sat).clamp_min(0) / s_free.clamp_min(1e-30)).clamp(max=1.0)
        t2[active] = new
        moving = ((new - old).abs() > 1e-7 * old).nonzero().flatten()
        if len(moving) == 0:
            break
        if len(moving) < len(active):  # converged rows drop out of the iteration
            active, vb, saturates_at = active[moving], vb[moving], saturates_at[moving]
            v2_total, r2, mask = v2_total[moving], r2[moving], mask[moving]
    d = torch.minimum(torch.maximum(t2.sqrt().view(shape) * d0, -xr), 1.0 - xr)
    # (1 - 1e-6): rounding can never leave a row outside its ball.
    d = d * (radius[rows] * (1 - 1e-6) / d.flatten(1).norm(dim=1).clamp_min(1e-30)).clamp(max=1.0).view(shape)
    if every:
        return d
    full[rows] = d
    return full


def random_start(x: torch.Tensor, radius: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A uniform draw from each row's L2 ball (Gaussian direction, radius r U^{1/n}), clipped to the box."""
    n = x[0].numel()
    direction = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
    u = torch.rand(len(x), generator=generator).to(x.device, x.dtype)
    r = (radius * u ** (1.0 / n)).view(-1, *([1] * (x.dim() - 1)))
    return torch.minimum(torch.maximum(r * direction, -x), 1.0 - x)


class Attack:
    """Base of the evaluation attacks: subclasses define ``prepare`` and ``objective``.

    Args:
        steps: projected-gradient steps of each row (screening and refinement together).
        step_frac: first step length as a fraction of lambda (cosine-decayed to ~0); None: the attack's default.
        batch_size: rows optimised together; None = all rows in one batch.
        restarts: starts per row, the best kept (see the module docstring); None: the attack's default.
    """

    name = "attack"
    # +1: the natural objective is minimised (latent attack); -1: it is maximised (max damage).
    sign = 1.0
    # First step as a fraction of lambda, tuned per attack against L-BFGS-B (docs/evaluation.md).
    default_step_frac = 1.0
    # Starts per row, tuned per attack against L-BFGS-B (docs/evaluation.md, "Strength gate").
    default_restarts = 1
    # Restart j's first step is step_frac * RESTART_STEP_SCALES[j % 2].
    RESTART_STEP_SCALES = (1.0, 0.25)
    # Share of the steps spent screening all restarts before only each row's best goes on.
    SCREEN_SHARE = 0.25
    # Step along the sphere at the ball's surface (:meth:`surface_direction`); tuned per attack.
    tangent_steps = False

    def __init__(
        self,
        steps: int = 100,
        step_frac: float | None = None,
        batch_size: int | None = None,
        restarts: int | None = None,
    ) -> None:
        step_frac = self.default_step_frac if step_frac is None else step_frac
        restarts = self.default_restarts if restarts is None else restarts
        if steps < 1 or step_frac <= 0 or (batch_size is not None and batch_size < 1) or restarts < 1:
            raise ValueError(
                f"bad attack settings: steps={steps}, step_frac={step_frac}, batch_size={batch_size}, "
                f"restarts={restarts}"
            )
        self.steps, self.step_frac, self.batch_size, self.restarts = steps, step_frac, batch_size, restarts

    def prepare(self, model: Any, x: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        """Per-image constants of the objective (N, ...), computed once without gradients."""
        raise NotImplementedError

    def objective(self, model: Any, x_adv: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
        """The natural per-row objective (R,) of x_adv (R, C, H, W) given the rows' constants."""
        raise NotImplementedError

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
        """Attack images ``x`` (N, C, H, W) in [0, 1] at every lambda in ``levels`` with ``trials`` random starts.

        ``targets`` (N, C, H, W): per-image target images where the attack needs them.
        ``progress(done, total)`` is called after every optimisation step (counted over all chunks).
        """
        if any(level <= 0 for level in levels):
            raise ValueError(f"attack budgets lambda must be > 0, got {tuple(levels)}")
        n, n_lev = len(x), len(levels)
        with torch.no_grad():
            const = self.prepare(model, x, targets)
        level_index = torch.arange(n_lev).repeat_interleave(trials * n)
        trial_index = torch.arange(trials).repeat_interleave(n).repeat(n_lev)
        image_index = torch.arange(n).repeat(n_lev * trials)
        level = torch.tensor(levels, dtype=x.dtype)[level_index]
        # All random starts are drawn up front so the result does not depend on batch_size. A row's
        # first start is the same whatever ``restarts`` is; its further starts are drawn after all first ones.
        starts = torch.stack(
            [random_start(x[image_index], level.to(x.device), generator) for _ in range(self.restarts)]
        )
        total = len(image_index)
        chunk = self.batch_size or total
        n_chunks = math.ceil(total / chunk)
        advs, losses = [], []
        for c, begin in enumerate(range(0, total, chunk)):
            rows = slice(begin, min(begin + chunk, total))
            idx = image_index[rows].to(x.device)

            def on_step(step: int, c: int = c) -> None:
                if progress is not None:
                    progress(c * self.steps + step, n_chunks * self.steps)

            adv, loss = self.best_of_starts(
                model, x[idx], const[idx], level[rows].to(x.device), starts[:, rows], on_step
            )
            advs.append(adv)
            losses.append(loss)
        return AttackResult(torch.cat(advs), torch.cat(losses), level, level_index, trial_index, image_index)

    def best_of_starts(
        self,
        model: Any,
        x: torch.Tensor,
        const: torch.Tensor,
        radius: torch.Tensor,
        starts: torch.Tensor,
        on_step: Callable[[int], None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's best (x_adv, objective) from its ``starts`` (k, R, ...): screen all k, refine the best."""
        k, n = starts.shape[:2]
        frac = torch.tensor(
            [self.step_frac * self.RESTART_STEP_SCALES[j % len(self.RESTART_STEP_SCALES)] for j in range(k)],
            dtype=x.dtype,
            device=x.device,
        ).repeat_interleave(n)
        if k == 1:
            return self.optimise(model, x, const, radius, starts[0], self.steps, frac, on_step)
        screen = max(1, round(self.steps * self.SCREEN_SHARE))

        def tile(t: torch.Tensor) -> torch.Tensor:
            return t.repeat(k, *([1] * (t.dim() - 1)))

        adv, value = self.optimise(
            model, tile(x), tile(const), tile(radius), starts.flatten(0, 1), screen, frac, on_step
        )
        pick = (self.sign * value).view(k, n).argmin(dim=0) * n + torch.arange(n, device=x.device)
        if screen == self.steps:
            return adv[pick], value[pick]

        def on_refine(step: int) -> None:
            if on_step is not None:
                on_step(screen + step)

        return self.optimise(model, x, const, radius, adv[pick] - x, self.steps - screen, frac[pick], on_refine)

    @staticmethod
    def surface_direction(
        direction: torch.Tensor, delta: torch.Tensor, x: torch.Tensor, radius: torch.Tensor
    ) -> torch.Tensor:
        """``direction`` without the parts the constraints would cancel: into an active box bound, or outwards at the sphere.

        A descent direction that mostly points out of the ball is, once normalised and projected
        back, a tiny step along the sphere; removing the outward radial part first (rows with
        ||delta|| at lambda) keeps the step length for the move the constraint allows.
        """
        shape = (-1,) + (1,) * (x.dim() - 1)
        blocked = ((delta <= -x + 1e-6) & (direction < 0)) | ((delta >= 1 - x - 1e-6) & (direction > 0))
        direction = torch.where(blocked, 0.0, direction)
        norm = delta.flatten(1).norm(dim=1)
        unit = delta / norm.clamp_min(1e-12).view(shape)
        outward = (direction * unit).flatten(1).sum(dim=1).clamp_min(0) * (norm >= radius * (1 - 1e-3))
        return direction - outward.view(shape) * unit

    def optimise(
        self,
        model: Any,
        x: torch.Tensor,
        const: torch.Tensor,
        radius: torch.Tensor,
        delta: torch.Tensor,
        steps: int,
        step_frac: torch.Tensor,
        on_step: Callable[[int], None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``steps`` of projected gradient descent on sign * objective from ``delta``; each row's best (x_adv, objective).

        ``step_frac`` (R,): each row's first step as a fraction of its radius, cosine-decayed over ``steps``.
        The start itself counts as an iterate, so the result is never worse than the start.
        """
        shape = (-1,) + (1,) * (x.dim() - 1)
        best_delta = delta.clone()
        best = torch.full((len(x),), math.inf, device=x.device, dtype=x.dtype)
        for step in range(steps + 1):
            delta = delta.detach().requires_grad_(True)
            with torch.enable_grad():
                value = self.sign * self.objective(model, x + delta, const)
                (grad,) = torch.autograd.grad(value.sum(), delta)
            value = value.detach()
            better = value < best
            best = torch.where(better, value, best)
            best_delta = torch.where(better.view(shape), delta.detach(), best_delta)
            if step == steps:
                break
            # L2-normalised step, length step_frac * lambda on a cosine schedule (never exactly 0).
            decay = 0.5 * (1 + math.cos(math.pi * step / steps)) + 0.01
            direction = self.surface_direction(-grad, delta.detach(), x, radius) if self.tangent_steps else -grad
            direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)
            delta = project_l2_box(delta.detach() + (decay * step_frac * radius).view(shape) * direction, x, radius)
            if on_step is not None:
                on_step(step + 1)
        return (x + best_delta).clamp(0.0, 1.0), self.sign * best
