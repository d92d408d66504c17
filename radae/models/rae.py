"""The robust GMM-prior deterministic autoencoder (paper eq. 9; method.md "Losses").

Training objective on a batch x (N, C, H, W) in [0, 1], with x_adv = perturb(E, x) (FGSM with
random start by default, :mod:`radae.perturb`), z = E(x), z_adv = E(x_adv):

    L = lambda_REC * L_REC + lambda_KS * L_KS_adv(z, z_adv) + lambda_CV * L_CV_adv(z, z_adv; alpha)

- L_REC = per-pixel MSE(G(z + xi), x), xi ~ N(0, latent_noise^2) (authors' code: 0.1); with
  ``loss.adv_rec`` also MSE(G(z_adv + xi'), x) is added.
- L_KS_adv is eq. 6 (:func:`radae.losses.adversarial_ks_loss`), L_CV_adv eq. 7-8
  (:func:`radae.losses.coupled_cov_loss`).
- lambda_KS and lambda_CV default to the eq. 10 heuristic (:func:`radae.losses.loss_weights`),
  lambda_REC to ``loss.rec_weight``; each times its ``*_mult`` factor. The resolved weights are
  buffers, so a checkpoint carries them.
- ``loss.ks_weighting`` (:data:`radae.losses.KS_WEIGHTINGS`) sets lambda_KS and the two
  coefficients of L_KS_adv: eq6 (2/3, 1/3 under one eq. 10 weight) or separate (the authors'
  code: each term its own eq. 10 weight). The coefficients are recomputed from the config
  (deterministic: the eq. 10 generator is seeded by ``train.seed``).

With ``adv.method = none`` it is the non-adversarial GMM deterministic autoencoder (2021 paper):
L = lambda_REC L_REC + lambda_KS L_KS(z) + lambda_CV L_CV(z). K = 1 gives the unimodal variant.
The prior's means are a buffer too (moved by ``.to(device)``, stored in ``state_dict``).

Eq. 9 itself is :func:`rae_objective`, a function of tensors, the networks as functions and the
step's random draws (:class:`StepNoise`, drawn by :func:`draw_noise`). :meth:`RobustGMMAE.loss`
calls it with the model's modules; the packed trainer (:mod:`radae.fast`) calls the same function
under ``torch.func.vmap`` with stacked parameters and per-trial hyper-parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from radae.config import AdvConfig, RunConfig
from radae.losses import (
    EQ6_COEFS,
    KS_WEIGHTINGS,
    adversarial_ks_loss,
    coupled_cov_loss,
    cov_loss,
    ks_loss,
    loss_weights,
)
from radae.models.base import MODELS, Autoencoder, LossOutput
from radae.models.networks import build_networks
from radae.perturb import perturb, schedule
from radae.prior import GMMPrior

Network = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class StepNoise:
    """One eq. 9 step's random draws: ``u`` (N, C, H, W) of the attack's random start (uniform),
    ``xi`` and ``xi_adv`` (N, D) of L_REC's latent noise (standard normal). Absent draws are zeros."""

    u: torch.Tensor
    xi: torch.Tensor
    xi_adv: torch.Tensor

    @classmethod
    def stack(cls, members: list[StepNoise]) -> StepNoise:
        """Stack along a new leading member axis (a pack of trials)."""
        return cls(*(torch.stack([getattr(m, f.name) for m in members]) for f in fields(cls)))


def draw_noise(
    generator: torch.Generator | None,
    x_shape: tuple[int, ...],
    latent_dim: int,
    adversarial: bool,
    adv_rec: bool,
    latent_noise: float,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> StepNoise:
    """The draws of one eq. 9 step, in this order: the random start ``u`` (adversarial only), then
    ``xi`` (when latent_noise > 0), then ``xi_adv`` (also with ``loss.adv_rec``); absent ones are zeros.

    One generator therefore gives :meth:`RobustGMMAE.loss` and a packed member the same numbers.
    """
    n, kw = x_shape[0], {"device": device, "dtype": dtype}
    zeros_z = torch.zeros(n, latent_dim, **kw)
    u = torch.rand(x_shape, generator=generator, **kw) if adversarial else torch.zeros(x_shape, **kw)
    xi = torch.randn(n, latent_dim, generator=generator, **kw) if latent_noise > 0 else zeros_z
    with_adv = adversarial and adv_rec and latent_noise > 0
    xi_adv = torch.randn(n, latent_dim, generator=generator, **kw) if with_adv else zeros_z
    return StepNoise(u, xi, xi_adv)


def rae_objective(
    encode: Network,
    decode: Network,
    x: torch.Tensor,
    x_adv: torch.Tensor | None,
    noise: StepNoise,
    prior: GMMPrior,
    alpha: float | torch.Tensor,
    ks_coefs: tuple[float | torch.Tensor, float | torch.Tensor],
    weights: tuple[float | torch.Tensor, float | torch.Tensor, float | torch.Tensor],
    latent_noise: float | torch.Tensor,
    adv_rec: bool,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 9: L = lambda_REC L_REC + lambda_KS L_KS_adv(z, z_adv) + lambda_CV L_CV_adv(z, z_adv; alpha).

    ``x`` (N, C, H, W) in [0, 1]; ``x_adv`` its perturbation (None: no adversarial training, then
    L_KS(z) and L_CV(z) replace the two adversarial terms). z, z_adv come from one ``encode`` pass
    over [x; x_adv] (BatchNorm sees both halves together). L_REC = MSE(decode(z + latent_noise xi),
    x), plus MSE(decode(z_adv + latent_noise xi_adv), x) with ``adv_rec``. ``weights`` =
    (lambda_REC, lambda_KS, lambda_CV); ``ks_coefs`` the two coefficients of eq. 6. Numbers may be
    tensors (one per vmapped trial). Returns the scalar total and the unweighted parts rec, ks,
    cov, and latent_shift = mean_i ||z_adv,i - z_i||^2 (detached).
    """
    if x_adv is None:
        z = z_adv = encode(x)
        ks, cov = ks_loss(z, prior), cov_loss(z, prior)
    else:
        z, z_adv = encode(torch.cat([x, x_adv], dim=0)).chunk(2, dim=0)
        ks = adversarial_ks_loss(z, z_adv, prior, ks_coefs)
        cov = coupled_cov_loss(z, z_adv, prior, alpha)
    rec = F.mse_loss(decode(z + latent_noise * noise.xi), x)
    if adv_rec and x_adv is not None:
        rec = rec + F.mse_loss(decode(z_adv + latent_noise * noise.xi_adv), x)
    rec_weight, ks_weight, cov_weight = weights
    total = rec_weight * rec + ks_weight * ks + cov_weight * cov
    shift = (z_adv - z).detach().pow(2).sum(dim=1).mean()
    return total, {"rec": rec, "ks": ks, "cov": cov, "latent_shift": shift}


@MODELS.register("rae")
class RobustGMMAE(Autoencoder):
    """Deterministic encoder/decoder, GMM prior buffer and the eq. 9 objective."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        prior: GMMPrior,
        image_shape: tuple[int, int, int],
        adv: AdvConfig,
        alpha: float,
        weights: tuple[float, float, float],
        latent_noise: float = 0.1,
        adv_rec: bool = False,
        ks_coefs: tuple[float, float] = EQ6_COEFS,
    ) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.image_shape = tuple(image_shape)
        self.latent_dim = prior.latent_dim
        self.adv, self.alpha = adv, float(alpha)
        self.latent_noise, self.adv_rec = float(latent_noise), bool(adv_rec)
        self.ks_coefs = (float(ks_coefs[0]), float(ks_coefs[1]))
        self.sigma = prior.sigma
        self.register_buffer("prior_means", prior.means.detach().clone())
        rec, ks, cov = weights
        self.register_buffer("rec_weight", torch.tensor(float(rec)))
        self.register_buffer("ks_weight", torch.tensor(float(ks)))
        self.register_buffer("cov_weight", torch.tensor(float(cov)))

    @classmethod
    def from_config(cls, cfg: RunConfig, image_shape: tuple[int, int, int]) -> RobustGMMAE:
        encoder, decoder = build_networks(cfg.model.arch, image_shape, cfg.model.latent_dim)
        p = cfg.prior
        prior = GMMPrior.create(
            p.num_modes, cfg.model.latent_dim, p.sigma, cfg.placement, p.scale, p.min_distance, p.seed
        )
        ks, cov = cfg.loss.ks_weight, cfg.loss.cov_weight
        adversarial = cfg.adv.method != "none"
        ks_coefs = EQ6_COEFS
        if ks is None or cov is None or (adversarial and cfg.loss.ks_weighting != "eq6"):
            heuristic = loss_weights(
                prior,
                cfg.train.batch_size,
                num_batches=cfg.loss.weight_batches,
                coupled=cfg.loss.coupled_weights,
                generator=torch.Generator().manual_seed(cfg.train.seed),
                alpha=cfg.loss.alpha,
                adversarial=adversarial,
            )
            ks_heuristic = heuristic.ks
            if adversarial:
                ks_heuristic, ks_coefs = KS_WEIGHTINGS.get(cfg.loss.ks_weighting)(heuristic)
            ks = ks_heuristic if ks is None else ks
            cov = heuristic.cov if cov is None else cov
        weights = (cfg.loss.rec_weight * cfg.loss.rec_mult, ks * cfg.loss.ks_mult, cov * cfg.loss.cov_mult)
        return cls(
            encoder,
            decoder,
            prior,
            image_shape,
            cfg.adv,
            cfg.loss.alpha,
            weights,
            cfg.loss.latent_noise,
            cfg.loss.adv_rec,
            ks_coefs,
        )

    @property
    def prior(self) -> GMMPrior:
        """The GMM prior on the means buffer's device."""
        return GMMPrior(self.prior_means, self.sigma)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.prior.sample(n, generator)

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """Eq. 9 on the batch ``x`` (:func:`rae_objective`); parts: rec, ks, cov (unweighted) and latent_shift."""
        steps = schedule(self.adv)
        noise = draw_noise(
            generator, x.shape, self.latent_dim, steps is not None, self.adv_rec, self.latent_noise, x.device, x.dtype
        )
        x_adv = None if steps is None else perturb(self.encoder, x, self.adv, u=noise.u)
        weights = (self.rec_weight, self.ks_weight, self.cov_weight)
        total, parts = rae_objective(
            self.encode,
            self.decode,
            x,
            x_adv,
            noise,
            self.prior,
            self.alpha,
            self.ks_coefs,
            weights,
            self.latent_noise,
            self.adv_rec,
        )
        return LossOutput(total, parts)
