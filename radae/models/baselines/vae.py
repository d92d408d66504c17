"""VAE and beta-VAE baselines, and the Gaussian-encoder base class every baseline builds on.

Model (Kingma & Welling 2014; Higgins et al. 2017): prior p(z) = N(0, I); encoder
q(z|x) = N(mu(x), diag exp(logvar(x))), the shared encoder net (``build_networks`` with
``encoder_out_dim = 2D``) giving [mu, logvar]; decoder G(z) in [0, 1] (the shared decoder net).

Objective on a batch (mean over the N images; every term summed over pixels or latent dims):

    L = NLL(x | G(z)) + beta * KL(q(z|x) || N(0, I)),   z = mu + exp(logvar / 2) * u,  u ~ N(0, I)

- ``vae``: beta = 1 (the negative ELBO); ``beta-vae``: beta = ``baseline.beta`` (default 4).
- NLL, ``baseline.likelihood`` (registry :data:`LIKELIHOODS`):
  ``bernoulli`` (default, MNIST-like data): -sum_p [x_p log G_p + (1 - x_p) log(1 - G_p)], the
  BCE summed over pixels (x in [0, 1] is used as the Bernoulli target);
  ``gaussian``: sum_p (x_p - G_p)^2 / (2 s^2) + P log(s sqrt(2 pi)) with fixed std
  s = ``baseline.likelihood_std``.
- KL in closed form (:func:`radae.divergences.gaussian_kl`).

Evaluation treats every model alike: ``encode(x)`` returns the posterior MEAN mu(x) (the attacks
act on it, and ``reconstruct(x) = G(mu(x))``); ``sample_latent`` draws from N(0, I).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from radae.config import RunConfig
from radae.divergences import gaussian_kl
from radae.models.base import MODELS, Autoencoder, LossOutput
from radae.models.networks import build_networks
from radae.registry import Registry

LIKELIHOODS: Registry = Registry("likelihood")

# exp(logvar) is clamped to this range so an untrained encoder cannot overflow the KL.
_LOGVAR_RANGE = (-20.0, 10.0)


@LIKELIHOODS.register("bernoulli")
def bernoulli_nll(x_hat: torch.Tensor, x: torch.Tensor, std: float) -> torch.Tensor:
    """-log Bernoulli(x | x_hat) summed over pixels, shape (N,); ``std`` unused. log is clamped at -100 (torch BCE)."""
    return F.binary_cross_entropy(x_hat, x, reduction="none").flatten(1).sum(1)


@LIKELIHOODS.register("gaussian")
def gaussian_nll(x_hat: torch.Tensor, x: torch.Tensor, std: float) -> torch.Tensor:
    """-log N(x | x_hat, std^2 I) summed over pixels, shape (N,)."""
    sse = (x - x_hat).pow(2).flatten(1).sum(1)
    return sse / (2 * std**2) + x[0].numel() * math.log(std * math.sqrt(2 * math.pi))


class GaussianVAE(Autoencoder):
    """Gaussian encoder, N(0, I) prior, configurable likelihood; ``loss`` is the beta-weighted negative ELBO.

    Subclasses change the objective by overriding :meth:`regulariser` (the terms besides the
    reconstruction NLL) or :meth:`loss`, and add their settings in :meth:`options`.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        likelihood: str = "bernoulli",
        likelihood_std: float = 0.1,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.image_shape = tuple(image_shape)
        self.latent_dim = int(latent_dim)
        self.likelihood, self.likelihood_std = likelihood, float(likelihood_std)
        self._nll = LIKELIHOODS.get(likelihood)
        self.beta = float(beta)

    @classmethod
    def options(cls, cfg: RunConfig) -> dict:
        """Constructor keywords taken from ``cfg`` (besides the networks and shapes)."""
        return {"likelihood": cfg.baseline.likelihood, "likelihood_std": cfg.baseline.likelihood_std, "beta": 1.0}

    @classmethod
    def networks(cls, cfg: RunConfig, image_shape: tuple[int, int, int]) -> tuple[nn.Module, nn.Module]:
        """Shared bodies with a 2D encoder head: [mu, logvar]."""
        d = cfg.model.latent_dim
        return build_networks(cfg.model.arch, image_shape, d, encoder_out_dim=2 * d)

    @classmethod
    def from_config(cls, cfg: RunConfig, image_shape: tuple[int, int, int]) -> GaussianVAE:
        encoder, decoder = cls.networks(cfg, image_shape)
        return cls(encoder, decoder, image_shape, cfg.model.latent_dim, **cls.options(cfg))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), each (N, D)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(*_LOGVAR_RANGE)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean mu(x): the deterministic code attacks and evaluation use."""
        return self.posterior(x)[0]

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes from the prior N(0, I)."""
        p = next(self.parameters())
        return torch.randn(n, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)

    @staticmethod
    def rsample(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised z = mu + exp(logvar / 2) * u, u ~ N(0, I)."""
        u = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * u

    def nll(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-image reconstruction NLL under ``self.likelihood``, shape (N,)."""
        return self._nll(x_hat, x, self.likelihood_std)

    def regulariser(
        self,
        x: torch.Tensor,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        z: torch.Tensor,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """beta * mean KL(q(z|x) || N(0, I)); returns (weighted scalar, named unweighted parts)."""
        kl = gaussian_kl(mu, logvar).mean()
        return self.beta * kl, {"kl": kl}

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """NLL + regulariser on the batch; parts: rec (NLL), the regulariser's terms, and elbo."""
        mu, logvar = self.posterior(x)
        z = self.rsample(mu, logvar, generator)
        rec = self.nll(self.decode(z), x).mean()
        reg, parts = self.regulariser(x, mu, logvar, z, generator)
        kl = parts["kl"] if "kl" in parts else gaussian_kl(mu, logvar).mean()
        return LossOutput(rec + reg, {"rec": rec, **parts, "elbo": -(rec + kl).detach()})


@MODELS.register("vae")
class VAE(GaussianVAE):
    """The VAE: negative ELBO (beta = 1)."""


@MODELS.register("beta-vae")
class BetaVAE(GaussianVAE):
    """beta-VAE (Higgins et al. 2017): KL weighted by ``baseline.beta`` (default 4)."""

    @classmethod
    def options(cls, cfg: RunConfig) -> dict:
        return {**super().options(cfg), "beta": cfg.baseline.beta}
