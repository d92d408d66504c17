"""Adversarial-training perturbations (method.md, "Adversarial training").

Each perturbation maximises the latent deviation ||E(x + delta) - E(x)||^2 (E(x) held fixed) over
delta in the L-inf ball of radius ``cfg.eps`` with x + delta in [0, 1], by signed-gradient ascent
from a random start. The registry :data:`PERTURBATIONS` (config ``adv.method``) maps a method to
its step schedule (:class:`SignedSteps`):

- ``fgsm`` (default): FGSM with random start. delta_0 ~ U[-eps, eps]^n, one signed-gradient step
  of size ``cfg.step_size`` (authors' MNIST setting eps = 0.3, a = 0.375), then projection.
- ``pgd``: the same objective and random start, ``cfg.pgd_steps`` projected signed steps of size
  ``cfg.pgd_step_size`` (default 2.5 * eps / steps).
- ``none``: no perturbation (no schedule; :func:`perturb` returns x itself).

One implementation serves one model and a pack of trials: :func:`signed_ascent` is a function of
tensors and a stateless encoder call (gradients by ``torch.func.grad``), so the packed trainer
(:mod:`radae.fast`) runs it under ``torch.func.vmap`` with per-trial eps and step size, and
:func:`perturb` runs it for an ``nn.Module`` encoder.

Arguments: ``encoder`` maps (N, C, H, W) images in [0, 1] to codes (N, D); ``x`` is a batch of such
images; ``generator`` (on x's device, or None for the global RNG) draws the random start.
The result is detached and has x's shape. The encoder is called through
``torch.func.functional_call`` with detached parameters and copies of its buffers, so its
``.grad`` fields and BatchNorm running statistics are never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from radae.config import AdvConfig
from radae.registry import Registry

PERTURBATIONS: Registry = Registry("adversarial training method")


@dataclass(frozen=True)
class SignedSteps:
    """The ascent a perturbation makes: ``steps`` projected signed-gradient steps of size ``step_size``."""

    steps: int
    step_size: float


@PERTURBATIONS.register("fgsm")
def fgsm(cfg: AdvConfig) -> SignedSteps:
    """FGSM with random start: one signed step of size ``cfg.step_size`` from delta_0 ~ U[-eps, eps]."""
    return SignedSteps(1, cfg.step_size)


@PERTURBATIONS.register("pgd")
def pgd(cfg: AdvConfig) -> SignedSteps:
    """PGD with random start: ``cfg.pgd_steps`` projected signed steps (default size 2.5 * eps / steps)."""
    step = cfg.pgd_step_size if cfg.pgd_step_size is not None else 2.5 * cfg.eps / cfg.pgd_steps
    return SignedSteps(cfg.pgd_steps, step)


@PERTURBATIONS.register("none")
def no_perturbation(cfg: AdvConfig) -> None:
    """No adversarial training: no ascent, the clean batch."""
    return None


def schedule(cfg: AdvConfig) -> SignedSteps | None:
    """The steps of the method ``cfg.method`` (None for ``none``); unknown methods list the registered ones."""
    return PERTURBATIONS.get(cfg.method)(cfg)


def random_start(x: torch.Tensor, u: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """x + delta_0 with delta_0 = (2u - 1) eps ~ U[-eps, eps]^n for u ~ U[0, 1]^n, cut to the pixel box [0, 1]."""
    return (x + (2 * u - 1) * eps).clamp(0.0, 1.0)


def signed_ascent(
    encode: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    u: torch.Tensor,
    eps: float | torch.Tensor,
    step_size: float | torch.Tensor,
    steps: int,
) -> torch.Tensor:
    """x_adv = x + delta maximising ||encode(x + delta) - encode(x)||^2 over ||delta||_inf <= eps, x + delta in [0, 1].

    From the random start ``random_start(x, u, eps)``, ``steps`` times: delta <- delta + step_size *
    sign(grad_delta), projected to the eps-ball and the pixel box. ``encode`` must not mutate state
    (``torch.func.grad`` refuses in-place updates of captured tensors; see :func:`frozen`);
    ``eps`` and ``step_size`` may be tensors (one per vmapped trial). x, u (N, C, H, W); returns
    x_adv detached, a constant of any outer gradient.
    """
    x = x.detach()
    z0 = encode(x).detach()
    delta = random_start(x, u, eps) - x

    def objective(d: torch.Tensor) -> torch.Tensor:
        return (encode(x + d) - z0).pow(2).sum()

    for _ in range(steps):
        grad = torch.func.grad(objective)(delta)
        delta = (delta + step_size * grad.sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0.0, 1.0) - x
    return (x + delta).detach()


def frozen(module: nn.Module, params: dict[str, torch.Tensor] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module`` as a stateless function: detached ``params`` (default: its own), fresh copies of its buffers per call.

    BatchNorm in training mode updates running statistics in its forward; on copies, the attack
    leaves the module exactly as it found it.
    """
    detached = {k: v.detach() for k, v in (params if params is not None else dict(module.named_parameters())).items()}
    buffers = dict(module.named_buffers())

    def call(inp: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(module, {**detached, **{k: b.clone() for k, b in buffers.items()}}, (inp,))

    return call


def perturb(
    encoder: nn.Module,
    x: torch.Tensor,
    cfg: AdvConfig,
    generator: torch.Generator | None = None,
    u: torch.Tensor | None = None,
) -> torch.Tensor:
    """x_adv for ``x`` by the method ``cfg.method`` (see the module docstring); detached, shape of x.

    ``u`` (shape of x, uniform on [0, 1]) is the random start's draw; without it, it is drawn from ``generator``.
    """
    steps = schedule(cfg)
    if steps is None:
        return x.detach()
    if u is None:
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return signed_ascent(frozen(encoder), x, u, cfg.eps, steps.step_size, steps.steps)
