"""One pack member's training objective (eq. 9) as a function of tensors, for ``torch.func.vmap``.

    member_loss(model, structure, params, hyper, x, noise) -> (total, parts)

It calls the model's own eq. 9 (:func:`radae.models.rae.rae_objective`), attack
(:func:`radae.perturb.signed_ascent`) and prior (:class:`radae.prior.GMMPrior`); what it adds is
where their inputs come from:

- ``params``: the model's parameters by name (``encoder.1.weight`` ...), as ``named_parameters``,
  called through ``torch.func.functional_call`` on the template ``model``'s modules.
- ``hyper``: :class:`MemberHyper`, every number a sweep varies at a fixed architecture, as tensors:
  prior means (K, D) with mode weights (K,) (zero weights pad a smaller K to the pack's largest),
  sigma, alpha, the three eq. 9 weights and eq. 6's two coefficients (``loss.ks_weighting``),
  latent-noise std, and the attack's eps and step size. Stacked along a leading member axis, it
  packs several trials.
- ``noise``: :class:`radae.models.rae.StepNoise` from :func:`radae.models.rae.draw_noise`, the
  draws ``RobustGMMAE.loss`` makes, so one generator gives both paths the same numbers.

The attack differentiates through the encoder on detached parameters; its result is a constant of
the outer gradient, as in the eager model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from radae.models.rae import StepNoise, rae_objective
from radae.perturb import frozen, signed_ascent
from radae.prior import GMMPrior

Params = dict[str, torch.Tensor]


@dataclass
class MemberHyper:
    """Per-trial settings of eq. 9 as tensors (scalars are 0-dim; stack them for a pack)."""

    means: torch.Tensor  # (K, D) prior means, zero rows for padded modes
    mode_weights: torch.Tensor  # (K,) 1/K_real on real modes, 0 on padding
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


@dataclass(frozen=True)
class Structure:
    """What every member of a pack shares: the computation graph of the step."""

    adversarial: bool  # adv.method is not none
    steps: int  # signed steps of the attack (1 for fgsm)
    adv_rec: bool


def submodule_params(params: Params, prefix: str) -> Params:
    """The entries of ``params`` under ``prefix`` (``encoder.``), named as inside that submodule."""
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def member_loss(
    model: nn.Module, structure: Structure, params: Params, hyper: MemberHyper, x: torch.Tensor, noise: StepNoise
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 9 for one member (:func:`radae.models.rae.rae_objective`) with parameters ``params``.

    ``model`` supplies the module structure only (``model.encoder``, ``model.decoder``); its own
    tensors are ignored. Returns the total and the detached parts rec, ks, cov, latent_shift.
    """
    enc_params, dec_params = submodule_params(params, "encoder."), submodule_params(params, "decoder.")

    def encode(inp: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model.encoder, enc_params, (inp,))

    def decode(z: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model.decoder, dec_params, (z,))

    x_adv = None
    if structure.adversarial:
        x_adv = signed_ascent(
            frozen(model.encoder, enc_params), x, noise.u, hyper.eps, hyper.step_size, structure.steps
        )
    prior = GMMPrior(hyper.means, hyper.sigma, hyper.mode_weights)
    total, parts = rae_objective(
        encode, decode, x, x_adv, noise, prior, hyper.alpha, (hyper.ks_coefs[0], hyper.ks_coefs[1]),
        (hyper.rec_weight, hyper.ks_weight, hyper.cov_weight), hyper.latent_noise, structure.adv_rec,
    )  # fmt: skip
    return total, {k: v.detach() for k, v in parts.items()}
