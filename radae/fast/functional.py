"""The robust autoencoder's training objective (eq. 9) as a pure function of parameters and noise.

:meth:`radae.models.rae.RobustGMMAE.loss` draws its randomness from a ``torch.Generator`` and
reads its hyper-parameters from Python attributes, so it cannot run under ``torch.func.vmap``.
This module restates the same computation as a function of tensors only:

    member_loss(params, hyper, x, noise) -> (total, parts)

- ``params``: the model's parameters by name (``encoder.1.weight`` ...), as ``named_parameters``.
- ``hyper``: :class:`MemberHyper` fields, all tensors: prior means (K, D) with mode weights (K,)
  (zero weights pad a smaller K to the pack's largest), sigma, alpha, the three eq. 9 weights and
  the two coefficients inside L_KS_adv (``loss.ks_weighting``),
  latent-noise std, and the attack's eps and step size. Everything a sweep varies at a fixed
  architecture is here, so stacking it along a leading member axis packs several trials.
- ``noise``: :class:`StepNoise`, the step's random draws, made by :func:`draw_noise` in exactly the
  order ``RobustGMMAE.loss`` draws them (``u`` of the random start, then ``xi`` of L_REC, then
  ``xi_adv`` when ``loss.adv_rec``), so one generator gives both paths the same numbers.

The attack (FGSM/PGD with random start, :mod:`radae.perturb`) differentiates through the encoder
with ``torch.func.grad`` on detached parameters; its result is a constant of the outer gradient,
as in the eager model where ``perturb`` returns a detached tensor. Losses come from
:mod:`radae.losses` unchanged: :class:`TensorPrior` gives them the ``cdf``/``covariance`` they call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from radae.losses import adversarial_ks_loss, coupled_cov_loss, cov_loss, ks_loss

Params = dict[str, torch.Tensor]


class TensorPrior:
    """A GMM prior held in tensors only (vmap-safe stand-in for :class:`radae.prior.GMMPrior`).

    F_d(t) = sum_k w_k Phi((t - mu_kd) / sigma) with w_k = 1/K on real modes and 0 on padding;
    with equal weights this is GMMPrior.cdf exactly (up to summation order). ``covariance`` is
    the precomputed Sigma_P of the real modes.
    """

    def __init__(self, means: torch.Tensor, mode_weights: torch.Tensor, sigma: torch.Tensor, cov: torch.Tensor):
        self.means, self.mode_weights, self.sigma, self.cov = means, mode_weights, sigma, cov

    def cdf(self, z: torch.Tensor) -> torch.Tensor:
        t = (z.unsqueeze(-2) - self.means.to(z.dtype)) / self.sigma  # (..., K, D)
        phi = 0.5 * (1.0 + torch.erf(t / math.sqrt(2.0)))
        return (phi * self.mode_weights.to(z.dtype).unsqueeze(-1)).sum(dim=-2)

    def covariance(self) -> torch.Tensor:
        return self.cov


@dataclass
class MemberHyper:
    """Per-trial settings of eq. 9 as tensors (scalars are 0-dim; stack them for a pack)."""

    means: torch.Tensor  # (K, D) prior means, zero rows for padded modes
    mode_weights: torch.Tensor  # (K,) 1/K_real on real modes, 0 on padding
    cov: torch.Tensor  # (D, D) Sigma_P
    sigma: torch.Tensor
    alpha: torch.Tensor
    rec_weight: torch.Tensor
    ks_weight: torch.Tensor
    ks_coefs: torch.Tensor  # (2,) coefficients of L_KS([Z; Z_adv]) and L_2pt in L_KS_adv (loss.ks_weighting)
    cov_weight: torch.Tensor
    latent_noise: torch.Tensor
    eps: torch.Tensor
    step_size: torch.Tensor  # FGSM step a, or the PGD step size

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def stack(cls, members: list[MemberHyper]) -> MemberHyper:
        """Stack along a new leading member axis."""
        return cls(**{f.name: torch.stack([getattr(m, f.name) for m in members]) for f in fields(cls)})


@dataclass
class StepNoise:
    """One step's random draws: ``u`` (N, C, H, W) uniform start, ``xi``/``xi_adv`` (N, D) standard normal.

    Absent draws are zeros, and the loss multiplies them by flags that mirror the eager model
    (no ``xi`` when the latent noise is 0, no ``xi_adv`` without ``loss.adv_rec``).
    """

    u: torch.Tensor
    xi: torch.Tensor
    xi_adv: torch.Tensor

    @classmethod
    def stack(cls, members: list[StepNoise]) -> StepNoise:
        return cls(*(torch.stack([getattr(m, f.name) for m in members]) for f in fields(cls)))


@dataclass(frozen=True)
class Structure:
    """What every member of a pack shares: the computation graph of the step."""

    method: str  # fgsm, pgd or none
    steps: int  # signed steps of the attack (1 for fgsm)
    adv_rec: bool


def draw_noise(
    generator: torch.Generator | None,
    x_shape: tuple[int, ...],
    latent_dim: int,
    structure: Structure,
    latent_noise: float,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> StepNoise:
    """The draws of one ``RobustGMMAE.loss`` call, in its order (perturb's start, then L_REC's xi)."""
    n = x_shape[0]
    kw = {"device": device, "dtype": dtype}
    zeros_z = torch.zeros(n, latent_dim, **kw)
    adversarial = structure.method != "none"
    u = torch.rand(x_shape, generator=generator, **kw) if adversarial else torch.zeros(x_shape, **kw)
    xi = torch.randn(n, latent_dim, generator=generator, **kw) if latent_noise > 0 else zeros_z
    with_adv = adversarial and structure.adv_rec and latent_noise > 0
    xi_adv = torch.randn(n, latent_dim, generator=generator, **kw) if with_adv else zeros_z
    return StepNoise(u, xi, xi_adv)


def _sub(params: Params, prefix: str) -> Params:
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def _perturb(
    encoder: nn.Module, enc_params: Params, x: torch.Tensor, u: torch.Tensor, hyper: MemberHyper, steps: int
) -> torch.Tensor:
    """radae.perturb's FGSM/PGD with random start, functionally: returns x_adv (a constant)."""
    frozen = {k: v.detach() for k, v in enc_params.items()}
    x = x.detach()
    z0 = torch.func.functional_call(encoder, frozen, (x,)).detach()
    eps = hyper.eps
    delta = (x + (2 * u - 1) * eps).clamp(0.0, 1.0) - x

    def objective(d: torch.Tensor) -> torch.Tensor:
        return (torch.func.functional_call(encoder, frozen, (x + d,)) - z0).pow(2).sum()

    for _ in range(steps):
        grad = torch.func.grad(objective)(delta)
        delta = torch.maximum(torch.minimum(delta + hyper.step_size * grad.sign(), eps), -eps)
        delta = (x + delta).clamp(0.0, 1.0) - x
    return (x + delta).detach()


def member_loss(
    model: nn.Module, structure: Structure, params: Params, hyper: MemberHyper, x: torch.Tensor, noise: StepNoise
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 9 for one member: lambda_REC L_REC + lambda_KS L_KS_adv + lambda_CV L_CV_adv.

    ``model`` supplies the module structure only (``model.encoder``, ``model.decoder``); its own
    tensors are ignored. Returns the total and the parts rec, ks, cov, latent_shift as in
    ``RobustGMMAE.loss``.
    """
    enc_params, dec_params = _sub(params, "encoder."), _sub(params, "decoder.")
    prior = TensorPrior(hyper.means, hyper.mode_weights, hyper.sigma, hyper.cov)

    def encode(inp: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model.encoder, enc_params, (inp,))

    def noisy_rec(z: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        decoded = torch.func.functional_call(model.decoder, dec_params, (z + hyper.latent_noise * xi,))
        return F.mse_loss(decoded, x)

    if structure.method == "none":
        z = z_adv = encode(x)
        ks, cov = ks_loss(z, prior), cov_loss(z, prior)
    else:
        x_adv = _perturb(model.encoder, enc_params, x, noise.u, hyper, structure.steps)
        z, z_adv = encode(torch.cat([x, x_adv], dim=0)).chunk(2, dim=0)
        ks = adversarial_ks_loss(z, z_adv, prior, (hyper.ks_coefs[0], hyper.ks_coefs[1]))
        cov = coupled_cov_loss(z, z_adv, prior, hyper.alpha)
    rec = noisy_rec(z, noise.xi)
    if structure.adv_rec and structure.method != "none":
        rec = rec + noisy_rec(z_adv, noise.xi_adv)
    total = hyper.rec_weight * rec + hyper.ks_weight * ks + hyper.cov_weight * cov
    shift = (z_adv - z).detach().pow(2).sum(dim=1).mean()
    return total, {"rec": rec.detach(), "ks": ks.detach(), "cov": cov.detach(), "latent_shift": shift}
