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
"""

from __future__ import annotations

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
from radae.perturb import perturb
from radae.prior import GMMPrior


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

    def _noisy_rec(self, z: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Per-pixel MSE(G(z + xi), x), xi ~ N(0, latent_noise^2)."""
        if self.latent_noise > 0:
            z = z + self.latent_noise * torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        return F.mse_loss(self.decode(z), x)

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """Eq. 9 on the batch ``x``; parts: rec, ks, cov (unweighted) and latent_shift = mean ||z_adv - z||^2."""
        prior = self.prior
        if self.adv.method == "none":
            z = self.encode(x)
            z_adv = z
            ks, cov = ks_loss(z, prior), cov_loss(z, prior)
        else:
            x_adv = perturb(self.encoder, x, self.adv, generator)
            # One encoder pass for both halves (BatchNorm sees the clean and adversarial batch together).
            z, z_adv = self.encode(torch.cat([x, x_adv], dim=0)).chunk(2, dim=0)
            ks = adversarial_ks_loss(z, z_adv, prior, self.ks_coefs)
            cov = coupled_cov_loss(z, z_adv, prior, self.alpha)
        rec = self._noisy_rec(z, x, generator)
        if self.adv_rec and self.adv.method != "none":
            rec = rec + self._noisy_rec(z_adv, x, generator)
        total = self.rec_weight * rec + self.ks_weight * ks + self.cov_weight * cov
        shift = (z_adv - z).detach().pow(2).sum(dim=1).mean()
        return LossOutput(total, {"rec": rec, "ks": ks, "cov": cov, "latent_shift": shift})
