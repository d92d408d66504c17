"""The paper's baselines, registered in ``radae.models.MODELS`` on import (docs/baselines.md).

- ``vae``, ``beta-vae``: :mod:`.vae` (negative ELBO, beta = 1 or ``baseline.beta``);
- ``beta-tcvae``: :mod:`.tcvae` (MI + beta TC + dim-wise KL, minibatch stratified sampling);
- ``lipschitz-vae``: :mod:`.lipschitz` (Bjorck layers, GroupSort, prescribed Lipschitz constants);
- ``se``: :mod:`.smooth` (Smooth Encoders: Sinkhorn between clean and perturbed posteriors);
- ``avae``: :mod:`.avae` (ELBO + rho-coupled self-consistency on reconstructions).

All share the Gaussian encoder of :class:`.vae.GaussianVAE`: ``encode(x)`` is the posterior mean,
``sample_latent`` draws from N(0, I), and the likelihood is ``baseline.likelihood``.
"""

from radae.models.baselines import avae, lipschitz, smooth, tcvae, vae  # noqa: F401  (register the models)
from radae.models.baselines.vae import LIKELIHOODS, GaussianVAE

BASELINES = ("vae", "beta-vae", "beta-tcvae", "lipschitz-vae", "se", "avae")

__all__ = ["BASELINES", "LIKELIHOODS", "GaussianVAE"]
