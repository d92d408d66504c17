"""AVAE baseline (Cemgil, Ghaisas, Dvijotham, Gowal, Kohli, NeurIPS 2020, "The Autoencoding
Variational Autoencoder").

The VAE of :mod:`radae.models.baselines.vae` plus a self-consistency term: encoding the model's
own reconstruction should give back (a rho-correlated copy of) the code it was decoded from. The
coupled prior pairs z with z~ ~ N(rho z, (1 - rho^2) I), so (z, z~) is jointly Gaussian with
N(0, I) marginals and correlation rho (``baseline.rho``, default 0.975). The exact form
implemented, on a batch x:

    mu, logvar = encoder(x);  z = mu + exp(logvar / 2) u,  u ~ N(0, I)
    x~ = G(z)                                   (the decoder's mean image, no pixel sampling)
    mu~, logvar~ = encoder(x~)
    L = NLL(x | G(z)) + KL(q(z|x) || N(0, I)) + w * KL(N(mu~, e^logvar~) || N(rho z, (1 - rho^2) I))

with w = ``baseline.avae_weight`` (default 1), means over the batch, both KLs in closed form
(:func:`radae.divergences.gaussian_kl`). Gradients flow through every path: the encoder is
trained on both passes, and the decoder also through x~ (its reconstructions are pushed to be
re-encodable), z is not detached. The reconstruction x~ is the same decoded image the data term
scores, so each step costs one extra encoder pass. Assumptions: pixel sampling of x~ is
replaced by the mean image (Bernoulli samples are not differentiable), and the term uses one
posterior sample per input.
"""

from __future__ import annotations

import math

import torch

from radae.config import RunConfig
from radae.divergences import gaussian_kl
from radae.models.base import MODELS, LossOutput
from radae.models.baselines.vae import GaussianVAE


@MODELS.register("avae")
class AVAE(GaussianVAE):
    """Negative ELBO + the rho-coupled self-consistency KL on the model's own reconstructions."""

    def __init__(self, encoder, decoder, image_shape, latent_dim, rho: float = 0.975, avae_weight: float = 1.0, **kw):
        super().__init__(encoder, decoder, image_shape, latent_dim, **kw)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho must be in [0, 1), got {rho}")
        self.rho, self.avae_weight = float(rho), float(avae_weight)

    @classmethod
    def options(cls, cfg: RunConfig) -> dict:
        return {**super().options(cfg), "rho": cfg.baseline.rho, "avae_weight": cfg.baseline.avae_weight}

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """The objective of the module docstring; parts: rec, kl, consistency, elbo."""
        mu, logvar = self.posterior(x)
        z = self.rsample(mu, logvar, generator)
        x_rec = self.decode(z)
        rec = self.nll(x_rec, x).mean()
        kl = gaussian_kl(mu, logvar).mean()
        mu_t, logvar_t = self.posterior(x_rec)
        consistency = gaussian_kl(mu_t, logvar_t, self.rho * z, math.log(1.0 - self.rho**2)).mean()
        total = rec + kl + self.avae_weight * consistency
        return LossOutput(total, {"rec": rec, "kl": kl, "consistency": consistency, "elbo": -(rec + kl).detach()})
