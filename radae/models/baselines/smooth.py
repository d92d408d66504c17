"""Smooth Encoders (SE) baseline (Cemgil, Ghaisas, Dvijotham, Kohli, ICLR 2020, "Adversarially
Robust Representations with Smooth Encoders").

No public code exists; this is an implementation from the paper's description, with these
ASSUMPTIONS (each a choice where the paper leaves room or where we simplify):

1. Model: the VAE of :mod:`radae.models.baselines.vae` (Gaussian encoder, N(0, I) prior, the
   configurable likelihood, Bernoulli by default; the paper's data term is a Gaussian one,
   ``baseline.likelihood = gaussian`` gives it).
2. Selection mechanism ("Select(x_a; L, eps)", paper sec. 3.1): the fictive point x_b is the
   adversarial perturbation of the clean batch x_a that maximises the deviation of the posterior
   MEAN, ||mu(x_b) - mu(x_a)||^2, in the L-inf ball ``adv.eps`` intersected with [0, 1], found by
   :func:`radae.perturb.perturb` with ``adv.*`` (FGSM with random start by default, PGD with
   ``adv.method = pgd``; the same attack the robust autoencoder trains with, so both see the same
   perturbations). ``baseline.se_perturbation = random`` instead draws x_b = x_a + U[-eps, eps],
   clipped to [0, 1]. x_b is a constant of the gradient (no gradient through the selection).
3. Objective (the paper's algorithm: data fidelity E1 on x_a + prior fidelity E2 on both
   representations + entropy-regularised Wasserstein term between them):

       L = NLL(x_a | G(z_a)) + KL(q(z|x_a) || p) + KL(q(z|x_b) || p) + w * mean_i S_eps(q(z|x_a,i), q(z|x_b,i))

   with w = ``baseline.se_weight`` (default 1). We use the full Gaussian KL as the prior term for
   both posteriors (the paper's E2 keeps its quadratic part; the log-det part it trades against
   the entropy of the coupling).
4. The entropy-regularised Wasserstein divergence between the two diagonal-Gaussian posteriors of
   each input is estimated by Sinkhorn on samples (the paper uses a closed form for Gaussians,
   appendix B.2): S = ``baseline.se_samples`` reparameterised draws from each posterior with
   COMMON noise (z_a = mu_a + s_a u, z_b = mu_b + s_b u, the same u), squared Euclidean cost,
   ``baseline.sinkhorn_eps`` and ``baseline.sinkhorn_iters``, and the DEBIASED Sinkhorn divergence
   (:func:`radae.divergences.sinkhorn_divergence`), so identical posteriors give exactly 0 and
   the term only pulls the perturbed representation onto the clean one.
5. The term is computed per input (its own clean and perturbed posterior), not between batches.

``encode`` returns the posterior mean, as for every Gaussian baseline.
"""

from __future__ import annotations

import torch
from torch import nn

from radae.config import AdvConfig, RunConfig
from radae.divergences import gaussian_kl, sinkhorn_divergence
from radae.models.base import MODELS, LossOutput
from radae.models.baselines.vae import GaussianVAE
from radae.perturb import perturb, random_start


class _MeanEncoder(nn.Module):
    """x -> mu(x): the deterministic code the selection mechanism attacks."""

    def __init__(self, model: GaussianVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x)


@MODELS.register("se")
class SmoothEncoderVAE(GaussianVAE):
    """VAE + KL of the perturbed posterior + Sinkhorn divergence between clean and perturbed posteriors."""

    def __init__(
        self,
        encoder,
        decoder,
        image_shape,
        latent_dim,
        adv: AdvConfig,
        se_weight: float = 1.0,
        se_perturbation: str = "adversarial",
        se_samples: int = 8,
        sinkhorn_eps: float = 0.1,
        sinkhorn_iters: int = 20,
        **kw,
    ) -> None:
        super().__init__(encoder, decoder, image_shape, latent_dim, **kw)
        self.adv = adv
        self.se_weight, self.se_perturbation = float(se_weight), se_perturbation
        self.se_samples, self.sinkhorn_eps, self.sinkhorn_iters = (
            int(se_samples),
            float(sinkhorn_eps),
            int(sinkhorn_iters),
        )

    @classmethod
    def options(cls, cfg: RunConfig) -> dict:
        b = cfg.baseline
        return {
            **super().options(cfg),
            "adv": cfg.adv,
            "se_weight": b.se_weight,
            "se_perturbation": b.se_perturbation,
            "se_samples": b.se_samples,
            "sinkhorn_eps": b.sinkhorn_eps,
            "sinkhorn_iters": b.sinkhorn_iters,
        }

    def select(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The fictive perturbed batch x_b (assumption 2), detached."""
        if self.se_perturbation == "random":
            u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            return random_start(x, u, self.adv.eps).detach()
        return perturb(_MeanEncoder(self), x, self.adv, generator)

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> LossOutput:
        """Assumption 3's objective; parts: rec, kl (clean), kl_perturbed, sinkhorn, latent_shift, elbo."""
        x_b = self.select(x, generator)
        mu, logvar = self.posterior(torch.cat([x, x_b], dim=0))
        (mu_a, mu_b), (lv_a, lv_b) = mu.chunk(2, dim=0), logvar.chunk(2, dim=0)
        z_a = self.rsample(mu_a, lv_a, generator)
        rec = self.nll(self.decode(z_a), x).mean()
        kl_a, kl_b = gaussian_kl(mu_a, lv_a).mean(), gaussian_kl(mu_b, lv_b).mean()
        # S common-noise draws per input: (N, S, D) clouds from each posterior
        n, d = mu_a.shape
        u = torch.randn((n, self.se_samples, d), generator=generator, device=x.device, dtype=mu.dtype)
        cloud_a = mu_a.unsqueeze(1) + (0.5 * lv_a).exp().unsqueeze(1) * u
        cloud_b = mu_b.unsqueeze(1) + (0.5 * lv_b).exp().unsqueeze(1) * u
        sink = sinkhorn_divergence(cloud_a, cloud_b, self.sinkhorn_eps, self.sinkhorn_iters).mean()
        total = rec + kl_a + kl_b + self.se_weight * sink
        shift = (mu_b - mu_a).detach().pow(2).sum(dim=1).mean()
        parts = {"rec": rec, "kl": kl_a, "kl_perturbed": kl_b, "sinkhorn": sink, "latent_shift": shift}
        return LossOutput(total, {**parts, "elbo": -(rec + kl_a).detach()})
