"""GMMPrior against independent computations (scipy.stats, numpy)."""

import numpy as np
import pytest
import torch
from scipy import stats

from radae.prior import GMMPrior


@pytest.mark.parametrize("k,d,placement", [(10, 10, "onehot"), (5, 10, "onehot"), (25, 10, "spread"), (1, 4, "auto")])
def test_cdf_matches_scipy_mixture(k, d, placement):
    prior = GMMPrior.create(k, d, sigma=1.3, placement=placement, scale=10.0, dtype=torch.float64)
    z = torch.randn(50, d, dtype=torch.float64) * 6
    means = prior.means.numpy()
    expected = np.mean([stats.norm.cdf(z.numpy(), loc=means[j], scale=1.3) for j in range(k)], axis=0)
    np.testing.assert_allclose(prior.cdf(z).numpy(), expected, rtol=1e-10, atol=1e-12)


def test_covariance_matches_numpy_sample_covariance_of_large_sample():
    prior = GMMPrior.create(15, 10, placement="spread", dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    samples = prior.sample(400_000, g).numpy()
    empirical = np.cov(samples, rowvar=False)
    analytic = prior.covariance().numpy()
    scale = np.abs(analytic).max()
    np.testing.assert_allclose(empirical, analytic, atol=0.02 * scale)


def test_covariance_closed_form_onehot():
    # mu_k = s e_k: Sigma_P = sigma^2 I + s^2 (I/K - 11^T/K^2) when K = D.
    k, s, sigma = 4, 10.0, 0.5
    prior = GMMPrior.create(k, k, sigma=sigma, placement="onehot", scale=s, dtype=torch.float64)
    expected = sigma**2 * np.eye(k) + s**2 * (np.eye(k) / k - np.ones((k, k)) / k**2)
    np.testing.assert_allclose(prior.covariance().numpy(), expected, atol=1e-12)


def test_unimodal_is_standard_normal_scaled():
    prior = GMMPrior.create(1, 6, sigma=2.0, placement="onehot")
    assert torch.count_nonzero(prior.means) == 0
    torch.testing.assert_close(prior.covariance(), 4.0 * torch.eye(6))


def test_spread_is_deterministic_and_respects_min_distance():
    a = GMMPrior.create(25, 10, placement="spread", min_distance=6.0, sigma=1.5, seed=3)
    b = GMMPrior.create(25, 10, placement="spread", min_distance=6.0, sigma=1.5, seed=3)
    c = GMMPrior.create(25, 10, placement="spread", min_distance=6.0, sigma=1.5, seed=4)
    assert torch.equal(a.means, b.means)
    assert not torch.equal(a.means, c.means)
    dist = torch.cdist(a.means, a.means) + torch.eye(25) * 1e9
    assert dist.min().item() == pytest.approx(9.0, rel=1e-5)


def test_onehot_rejects_more_modes_than_dimensions():
    with pytest.raises(ValueError, match="num_modes <= latent_dim"):
        GMMPrior.create(11, 10, placement="onehot")


def test_unknown_placement_lists_known():
    with pytest.raises(KeyError, match="onehot, spread"):
        GMMPrior.create(3, 10, placement="grid")


def test_sample_mode_frequencies_and_reproducibility():
    prior = GMMPrior.create(5, 5, scale=50.0)
    z1 = prior.sample(5000, torch.Generator().manual_seed(0))
    z2 = prior.sample(5000, torch.Generator().manual_seed(0))
    assert torch.equal(z1, z2)
    modes = torch.cdist(z1, prior.means).argmin(dim=1)
    counts = torch.bincount(modes, minlength=5).float() / 5000
    assert torch.all((counts - 0.2).abs() < 0.03)
