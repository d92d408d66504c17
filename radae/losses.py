"""The robust GMM autoencoder's distribution-matching losses (paper eq. 2-10, method.md "Losses").

Every loss is a pure function of codes ``z`` (N, D) and the prior; none has state. Constants in
their definitions are absorbed by the eq. 10 normalisation (:func:`loss_weights`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from radae.prior import GMMPrior
from radae.registry import Registry


def _empirical_cdf_levels(n: int, like: torch.Tensor) -> torch.Tensor:
    """i/N for ranks i = 1..N, shape (N, 1)."""
    return (torch.arange(1, n + 1, device=like.device, dtype=like.dtype) / n).unsqueeze(1)


def biased_covariance(z: torch.Tensor) -> torch.Tensor:
    """Sigma_hat = (1/N) sum_i (z_i - zbar)(z_i - zbar)^T for z (N, D); returns (D, D)."""
    centred = z - z.mean(dim=0, keepdim=True)
    return centred.T @ centred / z.shape[0]


def ks_loss(z: torch.Tensor, prior: GMMPrior) -> torch.Tensor:
    """Eq. 2-4: L_KS(Z) = mean_{i,d} (F_d(z_(i),d) - i/N)^2.

    Each latent dimension of ``z`` (N, D) is sorted independently; z_(i),d is its i-th smallest
    value (1-based rank i) and F_d the prior's marginal CDF. Returns a scalar.
    """
    sorted_z = torch.sort(z, dim=0).values
    return (prior.cdf(sorted_z) - _empirical_cdf_levels(z.shape[0], z)).pow(2).mean()


def cov_loss(z: torch.Tensor, prior: GMMPrior) -> torch.Tensor:
    """Eq. 5: L_CV(Z) = mean over the D x D entries of (Sigma_hat - Sigma_P)^2, Sigma_hat biased (1/N)."""
    return (biased_covariance(z) - prior.covariance().to(z.dtype)).pow(2).mean()


def two_point_ks_loss(z: torch.Tensor, z_adv: torch.Tensor, prior: GMMPrior) -> torch.Tensor:
    """Two-point KS term: mean_{i,d} (F_d(z_(i),d) - F_d(zadv_(i),d))^2.

    ``z`` and ``z_adv`` (N, D) are sorted per dimension separately and compared rank by rank
    through the prior CDF. Returns a scalar.
    """
    if z.shape != z_adv.shape:
        raise ValueError(f"z and z_adv must have the same shape, got {tuple(z.shape)} and {tuple(z_adv.shape)}")
    return (prior.cdf(torch.sort(z, dim=0).values) - prior.cdf(torch.sort(z_adv, dim=0).values)).pow(2).mean()


EQ6_COEFS = (2.0 / 3.0, 1.0 / 3.0)


def adversarial_ks_loss(
    z: torch.Tensor,
    z_adv: torch.Tensor,
    prior: GMMPrior,
    coefs: tuple[float | torch.Tensor, float | torch.Tensor] = EQ6_COEFS,
) -> torch.Tensor:
    """Eq. 6: L_KS_adv = c_1 L_KS([Z; Z_adv]) + c_2 L_2pt(Z, Z_adv), (c_1, c_2) = (2/3, 1/3) in eq. 6.

    [Z; Z_adv] stacks the 2N codes (empirical CDF levels i/(2N)). ``coefs`` other than eq. 6's
    come from a ``loss.ks_weighting`` (:data:`KS_WEIGHTINGS`); they may be tensors (vmapped
    trials). Returns a scalar.
    """
    c_stacked, c_two_point = coefs
    return c_stacked * ks_loss(torch.cat([z, z_adv], dim=0), prior) + c_two_point * two_point_ks_loss(z, z_adv, prior)


def coupled_covariance_target(prior: GMMPrior, alpha: float) -> torch.Tensor:
    """Eq. 8: T_alpha = [[Sigma_P, alpha Sigma_P], [alpha Sigma_P, Sigma_P]], shape (2D, 2D)."""
    p = prior.covariance()
    return torch.cat([torch.cat([p, alpha * p], dim=1), torch.cat([alpha * p, p], dim=1)], dim=0)


def coupled_cov_loss(z: torch.Tensor, z_adv: torch.Tensor, prior: GMMPrior, alpha: float) -> torch.Tensor:
    """Eq. 7-8: L_CV_adv = mean over the (2D)^2 entries of (Sigma_hat_joint - T_alpha)^2.

    Sigma_hat_joint is the biased covariance of the 2D-dimensional vectors [z_i, zadv_i].
    """
    if z.shape != z_adv.shape:
        raise ValueError(f"z and z_adv must have the same shape, got {tuple(z.shape)} and {tuple(z_adv.shape)}")
    joint = biased_covariance(torch.cat([z, z_adv], dim=1))
    return (joint - coupled_covariance_target(prior, alpha).to(z.dtype)).pow(2).mean()


def coupled_prior_pair(
    prior: GMMPrior, n: int, alpha: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two prior batches whose joint covariance is exactly T_alpha and whose marginals are P.

    z ~ P; for each row, with probability alpha z_adv = z, otherwise an independent draw from P.
    Then Cov(z, z_adv) = alpha Sigma_P and z_adv ~ P exactly.
    """
    z = prior.sample(n, generator)
    other = prior.sample(n, generator)
    device = generator.device if generator is not None else z.device
    same = (torch.rand(n, 1, generator=generator, device=device) < alpha).to(z.device)
    return z, torch.where(same, z, other)


@dataclass(frozen=True)
class LossWeights:
    """Eq. 10 weights: each the inverse of the loss's mean value on codes drawn from the prior."""

    ks: float  # lambda_KS for eq. 6's L_KS_adv (or L_KS without adversarial training)
    cov: float  # lambda_CV for L_CV_adv (or L_CV)
    ks_floor: float  # the mean loss on prior codes (1 / ks)
    cov_floor: float  # the mean loss on prior codes (1 / cov)
    # The two terms of eq. 6 separately (adversarial only; ks_floor = 2/3 stacked + 1/3 two_point):
    stacked_floor: float = math.nan  # mean L_KS([Z; Z_adv]) on independent prior pairs
    two_point_floor: float = math.nan  # mean L_2pt(Z, Z_adv) on independent prior pairs


def loss_weights(
    prior: GMMPrior,
    batch_size: int,
    num_batches: int = 100,
    coupled: bool = False,
    generator: torch.Generator | None = None,
    alpha: float = 0.95,
    adversarial: bool = True,
) -> LossWeights:
    """Eq. 10: lambda^-1 = mean of the loss over ``num_batches`` batches of ``batch_size`` prior codes.

    For the two-input losses (``adversarial=True``: L_KS_adv and L_CV_adv) the second batch is
    drawn independently of the first (the paper's choice) and L_CV_adv is then measured against
    its independence target (alpha = 0), so both weights normalise by a noise floor. With
    ``coupled=True`` the pair comes from :func:`coupled_prior_pair` at ``alpha`` and L_CV_adv is
    measured against T_alpha. ``adversarial=False`` gives the weights of L_KS and L_CV.
    """
    if batch_size < 2 or num_batches < 1:
        raise ValueError(f"need batch_size >= 2 and num_batches >= 1, got {batch_size} and {num_batches}")
    ks_total, cov_total, stacked_total, two_point_total = 0.0, 0.0, 0.0, 0.0
    with torch.no_grad():
        for _ in range(num_batches):
            if not adversarial:
                z = prior.sample(batch_size, generator)
                ks_total += float(ks_loss(z, prior))
                cov_total += float(cov_loss(z, prior))
                continue
            if coupled:
                z, z_adv = coupled_prior_pair(prior, batch_size, alpha, generator)
                target_alpha = alpha
            else:
                z, z_adv = prior.sample(batch_size, generator), prior.sample(batch_size, generator)
                target_alpha = 0.0
            stacked = float(ks_loss(torch.cat([z, z_adv], dim=0), prior))
            two_point = float(two_point_ks_loss(z, z_adv, prior))
            stacked_total, two_point_total = stacked_total + stacked, two_point_total + two_point
            ks_total += EQ6_COEFS[0] * stacked + EQ6_COEFS[1] * two_point
            cov_total += float(coupled_cov_loss(z, z_adv, prior, target_alpha))
    ks_floor, cov_floor = ks_total / num_batches, cov_total / num_batches
    extra = {}
    if adversarial:
        extra = {"stacked_floor": stacked_total / num_batches, "two_point_floor": two_point_total / num_batches}
    return LossWeights(ks=1.0 / ks_floor, cov=1.0 / cov_floor, ks_floor=ks_floor, cov_floor=cov_floor, **extra)


# ``loss.ks_weighting``: how eq. 10 weights the two terms of L_KS_adv. Each entry maps the
# measured floors to (lambda_KS, (c_1, c_2)); the loss is then lambda_KS * (c_1 L_KS + c_2 L_2pt).
KS_WEIGHTINGS: Registry = Registry("ks weighting")


@KS_WEIGHTINGS.register("eq6")
def eq6_weighting(weights: LossWeights) -> tuple[float, tuple[float, float]]:
    """Eq. 6 then eq. 10: one weight 1 / mean((2/3) L_KS + (1/3) L_2pt) for the combined term."""
    return weights.ks, EQ6_COEFS


@KS_WEIGHTINGS.register("separate")
def separate_weighting(weights: LossWeights) -> tuple[float, tuple[float, float]]:
    """The authors' released loss.py: w_1 L_KS([Z; Z_adv]) + w_2 L_2pt, each w = 1 / its own eq. 10 floor.

    Written as lambda_KS (c_1 L_KS + c_2 L_2pt) with lambda_KS = w_1 + w_2 and c_i = w_i / lambda_KS,
    so ``loss.ks_mult`` scales both terms and the logged ``ks`` part stays one number.
    """
    if not (math.isfinite(weights.stacked_floor) and math.isfinite(weights.two_point_floor)):
        raise ValueError(
            "separate KS weighting needs the floors of both adversarial KS terms (loss_weights(adversarial=True))"
        )
    w1, w2 = 1.0 / weights.stacked_floor, 1.0 / weights.two_point_floor
    return w1 + w2, (w1 / (w1 + w2), w2 / (w1 + w2))
