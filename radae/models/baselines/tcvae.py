"""beta-TCVAE baseline (Chen, Li, Grosse, Duvenaud 2018, "Isolating Sources of Disentanglement in VAEs").

Same encoder, decoder, prior and likelihood as :mod:`radae.models.baselines.vae`. The KL term of
the ELBO, averaged over the data, splits into (Chen et al. eq. 2)

    E_x KL(q(z|x) || p(z)) = I_q(x; z) + KL(q(z) || prod_d q(z_d)) + sum_d KL(q(z_d) || p(z_d))
                           =   MI      +          TC               +       dim-wise KL

and the objective weights them separately (their eq. 4):

    L = NLL(x | G(z)) + alpha * MI + beta * TC + gamma * dwKL

with ``baseline.tc_alpha/tc_beta/tc_gamma`` (defaults 1, 6, 1). The three terms are estimated on
each batch with minibatch stratified sampling (:func:`radae.divergences.tc_decomposition`), which
needs the data-set size N: ``baseline.dataset_size`` when set, else the size of the training split
``radae.data.load_dataset`` produces for ``cfg.data`` (official training set minus ``data.val_size``
where the validation split is carved from it, capped by ``data.train_limit``), computed from the
config alone without touching the files. N only enters through log weights, so an approximate
value changes the estimate little. A batch larger than N (a tiny ``train_limit``) uses N = batch.
"""

from __future__ import annotations

from torch import nn

from radae.config import RunConfig
from radae.divergences import tc_decomposition
from radae.models.base import MODELS
from radae.models.baselines.vae import GaussianVAE

# Official training-set sizes, and whether the validation split is carved from them (radae.data).
_TRAIN_SIZES = {
    "mnist": (60000, True),
    "fashion-mnist": (60000, True),
    "svhn": (73257, True),
    "celeba": (162770, False),
}


def training_set_size(cfg: RunConfig) -> int:
    """N for the stratified weights: ``baseline.dataset_size`` or the training split ``cfg.data`` gives."""
    if cfg.baseline.dataset_size is not None:
        return cfg.baseline.dataset_size
    total, carved = _TRAIN_SIZES[cfg.data.name]
    n = total - cfg.data.val_size if carved else total
    return max(2, min(n, cfg.data.train_limit or n))


@MODELS.register("beta-tcvae")
class BetaTCVAE(GaussianVAE):
    """NLL + alpha MI + beta TC + gamma dwKL with minibatch stratified sampling."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        dataset_size: int,
        tc_alpha: float = 1.0,
        tc_beta: float = 6.0,
        tc_gamma: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(encoder, decoder, image_shape, latent_dim, **kwargs)
        self.dataset_size = int(dataset_size)
        self.tc_alpha, self.tc_beta, self.tc_gamma = float(tc_alpha), float(tc_beta), float(tc_gamma)

    @classmethod
    def options(cls, cfg: RunConfig) -> dict:
        b = cfg.baseline
        return {
            **super().options(cfg),
            "dataset_size": training_set_size(cfg),
            "tc_alpha": b.tc_alpha,
            "tc_beta": b.tc_beta,
            "tc_gamma": b.tc_gamma,
        }

    def regulariser(self, x, mu, logvar, z, generator):
        """alpha MI + beta TC + gamma dwKL (Chen et al. eq. 4); parts hold the three estimates and their sum."""
        mi, tc, dwkl = tc_decomposition(z, mu, logvar, max(self.dataset_size, z.shape[0]))
        total = self.tc_alpha * mi + self.tc_beta * tc + self.tc_gamma * dwkl
        return total, {"mi": mi, "tc": tc, "dwkl": dwkl, "kl": mi + tc + dwkl}
