"""The eq. 2-10 losses on hand-built cases with known values, and their noise floors."""

import numpy as np
import pytest
import torch

from radae import losses as L
from radae.prior import GMMPrior


@pytest.fixture
def prior():
    return GMMPrior.create(10, 10, scale=10.0, dtype=torch.float64)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_ks_loss_hand_built_value():
    # One mode at 0, sigma 1, D = 1: codes at the Phi-quantiles of i/N give F = i/N exactly.
    prior = GMMPrior.create(1, 1, dtype=torch.float64)
    n = 4
    levels = torch.arange(1, n + 1, dtype=torch.float64) / n
    z = torch.distributions.Normal(0.0, 1.0).icdf(levels.clamp(max=1 - 1e-12))[:, None]
    assert L.ks_loss(z[torch.randperm(n)], prior).item() == pytest.approx(0.0, abs=1e-12)
    # All codes at 0: F = 1/2 everywhere, loss = mean((1/2 - i/4)^2) over i = 1..4.
    expected = np.mean([(0.5 - i / 4) ** 2 for i in range(1, 5)])
    assert L.ks_loss(torch.zeros(4, 1, dtype=torch.float64), prior).item() == pytest.approx(expected)


def test_cov_loss_hand_built_value():
    prior = GMMPrior.create(1, 2, dtype=torch.float64)  # Sigma_P = I
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)  # biased cov = diag(1, 0)
    assert L.cov_loss(z, prior).item() == pytest.approx(0.25)  # entries diff: 0, 0, 0, -1 -> 1/4
    torch.testing.assert_close(L.biased_covariance(z), torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64))


def test_prior_samples_score_far_below_shifted_or_scaled(prior):
    z = prior.sample(200, gen())
    ks = L.ks_loss(z, prior).item()
    assert L.ks_loss(z + 3.0, prior).item() > 10 * ks
    assert L.ks_loss(z * 2.0, prior).item() > 10 * ks
    cv = L.cov_loss(z, prior).item()
    assert L.cov_loss(z * 2.0, prior).item() > 10 * cv
    # The covariance is blind to a shift by construction: that is the KS term's job.
    assert L.cov_loss(z + 3.0, prior).item() == pytest.approx(cv)


def test_two_point_ks_zero_for_same_sets_and_order_invariant(prior):
    z = prior.sample(100, gen())
    assert L.two_point_ks_loss(z, z[torch.randperm(100)], prior).item() == pytest.approx(0.0, abs=1e-15)
    assert L.two_point_ks_loss(z, z + 2.0, prior).item() > 1e-3


def test_adversarial_ks_is_two_thirds_stacked_plus_one_third_two_point(prior):
    z, za = prior.sample(64, gen(1)), prior.sample(64, gen(2)) + 0.5
    expected = 2 / 3 * L.ks_loss(torch.cat([z, za]), prior) + 1 / 3 * L.two_point_ks_loss(z, za, prior)
    assert L.adversarial_ks_loss(z, za, prior).item() == pytest.approx(expected.item())
    # With z_adv = z the stacked sample has each code twice: ranks interleave, so the loss
    # stays at the KS level of z itself (up to the 1/(2N) rank offsets).
    assert L.adversarial_ks_loss(z, z, prior).item() < 3 * L.ks_loss(z, prior).item() + 1e-3


def test_coupled_cov_loss_closed_form_target(prior):
    target = L.coupled_covariance_target(prior, 0.9)
    p = prior.covariance()
    torch.testing.assert_close(target[:10, 10:], 0.9 * p)
    torch.testing.assert_close(target[10:, :10], 0.9 * p)
    torch.testing.assert_close(target[:10, :10], p)


def test_coupled_cov_loss_noise_floor_vs_independent(prior):
    alpha = 0.95
    coupled = np.mean([L.coupled_cov_loss(*L.coupled_prior_pair(prior, 100, alpha, gen(s)), prior, alpha).item() for s in range(30)])
    independent = np.mean(
        [L.coupled_cov_loss(prior.sample(100, gen(s)), prior.sample(100, gen(100 + s)), prior, alpha).item() for s in range(30)]
    )
    weights = L.loss_weights(prior, 100, num_batches=100, coupled=True, alpha=alpha, generator=gen(7))
    assert weights.cov_floor == pytest.approx(coupled, rel=0.15)  # eq. 10 reproduces the noise floor
    assert independent > 4 * coupled


def test_coupled_prior_pair_has_target_covariance(prior):
    z, za = L.coupled_prior_pair(prior, 200_000, 0.8, gen(3))
    joint = L.biased_covariance(torch.cat([z, za], dim=1))
    target = L.coupled_covariance_target(prior, 0.8)
    assert (joint - target).abs().max().item() < 0.03 * target.abs().max().item()


def test_loss_weights_are_inverse_mean_losses(prior):
    w = L.loss_weights(prior, 50, num_batches=20, generator=gen(5))
    g = gen(5)
    ks, cv = [], []
    for _ in range(20):
        z, za = prior.sample(50, g), prior.sample(50, g)
        ks.append(L.adversarial_ks_loss(z, za, prior).item())
        cv.append(L.coupled_cov_loss(z, za, prior, 0.0).item())
    assert w.ks == pytest.approx(1 / np.mean(ks))
    assert w.cov == pytest.approx(1 / np.mean(cv))
    plain = L.loss_weights(prior, 50, num_batches=20, adversarial=False, generator=gen(5))
    assert plain.ks > 0 and plain.cov > 0


def test_losses_are_differentiable(prior):
    z = prior.sample(32, gen()).requires_grad_()
    za = (z.detach() + 0.1).requires_grad_()
    total = L.adversarial_ks_loss(z, za, prior) + L.coupled_cov_loss(z, za, prior, 0.95)
    total.backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert torch.isfinite(za.grad).all() and za.grad.abs().sum() > 0


def test_shape_mismatch_is_rejected(prior):
    with pytest.raises(ValueError, match="same shape"):
        L.coupled_cov_loss(torch.zeros(4, 10), torch.zeros(5, 10), prior, 0.5)
