"""Adversarial-training perturbations (method.md, "Adversarial training").

Each perturbation maximises the latent deviation ||E(x + delta) - E(x)||^2 (E(x) held fixed) over
delta in the L-inf ball of radius ``cfg.eps`` with x + delta in [0, 1]:

- ``fgsm`` (default): FGSM with random start. delta_0 ~ U[-eps, eps]^n, one signed-gradient step
  of size ``cfg.step_size`` (authors' MNIST setting eps = 0.3, a = 0.375), then projection.
- ``pgd``: the same objective and random start, ``cfg.pgd_steps`` projected signed steps of size
  ``cfg.pgd_step_size`` (default 2.5 * eps / steps).
- ``none``: no perturbation (returns x itself).

Arguments: ``encoder`` maps (N, C, H, W) images in [0, 1] to codes (N, D); ``x`` is a batch of such
images; ``generator`` (on x's device, or None for the global RNG) draws the random start.
The result is detached and has x's shape. Gradients are taken with ``torch.autograd.grad`` with
respect to delta only, so the encoder's ``.grad`` fields are never touched, and BatchNorm running
statistics are restored after the attack's forward passes, so attacking does not change the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from radae.config import AdvConfig
from radae.registry import Registry

Perturbation = Callable[[nn.Module, torch.Tensor, AdvConfig, "torch.Generator | None"], torch.Tensor]
PERTURBATIONS: Registry = Registry("adversarial training method")


@contextmanager
def preserved_norm_stats(module: nn.Module) -> Iterator[None]:
    """Restore every BatchNorm running statistic of ``module`` on exit (the attack must not train BN)."""
    buffers = [b for m in module.modules() if isinstance(m, nn.modules.batchnorm._NormBase) for b in m.buffers()]
    saved = [b.detach().clone() for b in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, old in zip(buffers, saved, strict=True):
                buf.copy_(old)


def _random_start(x: torch.Tensor, eps: float, generator: torch.Generator | None) -> torch.Tensor:
    """delta_0 ~ U[-eps, eps]^n, then cut so that x + delta_0 stays in [0, 1]."""
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return ((x + (2 * u - 1) * eps).clamp(0.0, 1.0) - x).detach()


def _signed_step(
    encoder: nn.Module, x: torch.Tensor, z0: torch.Tensor, delta: torch.Tensor, step: float, eps: float
) -> torch.Tensor:
    """delta + step * sign(grad_delta ||E(x + delta) - z0||^2), projected to the eps-ball and [0, 1]."""
    delta = delta.detach().requires_grad_(True)
    objective = (encoder(x + delta) - z0).pow(2).sum()
    (grad,) = torch.autograd.grad(objective, delta)
    delta = (delta.detach() + step * grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0.0, 1.0) - x


def _iterate(
    encoder: nn.Module, x: torch.Tensor, eps: float, step: float, steps: int, generator: torch.Generator | None
) -> torch.Tensor:
    x = x.detach()
    with preserved_norm_stats(encoder), torch.enable_grad():
        with torch.no_grad():
            z0 = encoder(x)
        delta = _random_start(x, eps, generator)
        for _ in range(steps):
            delta = _signed_step(encoder, x, z0, delta, step, eps)
    return (x + delta).detach()


@PERTURBATIONS.register("fgsm")
def fgsm(encoder: nn.Module, x: torch.Tensor, cfg: AdvConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """FGSM with random start: one signed step of size ``cfg.step_size`` from delta_0 ~ U[-eps, eps]."""
    return _iterate(encoder, x, cfg.eps, cfg.step_size, 1, generator)


@PERTURBATIONS.register("pgd")
def pgd(encoder: nn.Module, x: torch.Tensor, cfg: AdvConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """PGD with random start: ``cfg.pgd_steps`` projected signed steps (default size 2.5 * eps / steps)."""
    return _iterate(encoder, x, cfg.eps, cfg.step, cfg.pgd_steps, generator)


@PERTURBATIONS.register("none")
def no_perturbation(
    encoder: nn.Module, x: torch.Tensor, cfg: AdvConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """No adversarial training: the clean batch."""
    return x.detach()


def perturb(
    encoder: nn.Module, x: torch.Tensor, cfg: AdvConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x_adv for ``x`` by the method ``cfg.method`` (see the module docstring); detached, shape of x."""
    return PERTURBATIONS.get(cfg.method)(encoder, x, cfg, generator)
