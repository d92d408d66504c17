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
    coupled = np.mean(
        [L.coupled_cov_loss(*L.coupled_prior_pair(prior, 100, alpha, gen(s)), prior, alpha).item() for s in range(30)]
    )
    independent = np.mean(
        [
            L.coupled_cov_loss(prior.sample(100, gen(s)), prior.sample(100, gen(100 + s)), prior, alpha).item()
            for s in range(30)
        ]
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


def test_separate_ks_weighting_gives_each_term_its_own_eq10_weight(prior):
    """loss.ks_weighting=separate: w_1 L_KS([Z; Z_adv]) + w_2 L_2pt with w_i = 1 / mean of term i on prior pairs."""
    w = L.loss_weights(prior, 50, num_batches=20, generator=gen(5))
    g = gen(5)
    stacked, two_point = [], []
    for _ in range(20):
        z, za = prior.sample(50, g), prior.sample(50, g)
        stacked.append(L.ks_loss(torch.cat([z, za]), prior).item())
        two_point.append(L.two_point_ks_loss(z, za, prior).item())
    w1, w2 = 1 / np.mean(stacked), 1 / np.mean(two_point)
    lam, (c1, c2) = L.KS_WEIGHTINGS.get("separate")(w)
    assert lam * c1 == pytest.approx(w1) and lam * c2 == pytest.approx(w2)
    # The eq. 6 floor is the 2/3 : 1/3 mix of the two floors, and eq6 keeps today's weights.
    assert w.ks_floor == pytest.approx(2 / 3 * np.mean(stacked) + 1 / 3 * np.mean(two_point))
    assert L.KS_WEIGHTINGS.get("eq6")(w) == (w.ks, (2 / 3, 1 / 3))
    # Independent prior pairs: L_2pt's floor is about 4x the stacked floor (~2/(6N) vs ~1/(6 * 2N)), so
    # separate weights the stacked term ~3x and the two-point term ~1.5x what eq. 6 gives them, and
    # the two-point share of L_KS_adv falls from 1/3 to ~1/5 (measured here, not eq. 6's reading).
    assert 3.0 < np.mean(two_point) / np.mean(stacked) < 5.0
    assert 0.15 < c2 < 0.25
    assert lam * c1 > 2.5 * (2 / 3) * w.ks and lam * c2 > 1.2 * (1 / 3) * w.ks
    z, za = prior.sample(64, gen(1)), prior.sample(64, gen(2)) + 0.5
    expected = w1 * L.ks_loss(torch.cat([z, za]), prior) + w2 * L.two_point_ks_loss(z, za, prior)
    assert (lam * L.adversarial_ks_loss(z, za, prior, (c1, c2))).item() == pytest.approx(expected.item(), rel=1e-9)


def test_separate_weighting_needs_the_adversarial_floors(prior):
    plain = L.loss_weights(prior, 50, num_batches=2, adversarial=False, generator=gen(5))
    with pytest.raises(ValueError, match="both adversarial KS terms"):
        L.KS_WEIGHTINGS.get("separate")(plain)
    with pytest.raises(KeyError, match="eq6, separate"):
        L.KS_WEIGHTINGS.get("paper")


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
