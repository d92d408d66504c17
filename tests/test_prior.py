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
    with pytest.raises(KeyError, match="auto, onehot, roll, sobol-doubling, spread"):
        GMMPrior.create(3, 10, placement="grid")


def _pairwise(means: torch.Tensor) -> np.ndarray:
    """Distances between distinct mode pairs, computed with numpy (independent of torch.cdist)."""
    m = means.double().numpy()
    return np.array([np.linalg.norm(m[i] - m[j]) for i in range(len(m)) for j in range(i + 1, len(m))])


@pytest.mark.parametrize("k", [2, 5, 10, 15, 20, 25])
@pytest.mark.parametrize("sigma,min_distance", [(1.0, 6.0), (1.5, 4.0)])
def test_sobol_doubling_ends_between_min_distance_and_twice_it(k, sigma, min_distance):
    prior = GMMPrior.create(
        k, 10, sigma=sigma, placement="sobol-doubling", min_distance=min_distance, dtype=torch.float64
    )
    closest = _pairwise(prior.means).min()
    assert min_distance * sigma <= closest < 2 * min_distance * sigma
    # Doubling keeps the directions: every mean has the same norm, a power of two.
    norms = prior.means.norm(dim=1)
    assert torch.allclose(norms, norms[0].expand_as(norms))
    assert float(torch.log2(norms[0])) == pytest.approx(round(float(torch.log2(norms[0]))), abs=1e-9)
    # No seed: the same means every time, whatever prior.seed says.
    again = GMMPrior.create(
        k, 10, sigma=sigma, placement="sobol-doubling", min_distance=min_distance, seed=7, dtype=torch.float64
    )
    assert torch.equal(prior.means, again.means)


def test_sobol_doubling_keeps_the_geometry_across_k_at_d10():
    # One placement for a whole K sweep: from K = 10 to 25 in D = 10 the modes lie on one sphere with
    # one closest distance (the first 10 Sobol points are a subset of the first 25).
    means = {k: GMMPrior.create(k, 10, placement="sobol-doubling", dtype=torch.float64).means for k in (10, 15, 20, 25)}
    closest = {k: _pairwise(m).min() for k, m in means.items()}
    assert max(closest.values()) - min(closest.values()) < 1e-9
    assert torch.equal(means[25][:10], means[10])


@pytest.mark.parametrize("k", [3, 10, 25])
def test_roll_is_the_authors_np_roll_placement(k):
    prior = GMMPrior.create(k, 10, placement="roll", scale=10.0, dtype=torch.float64)
    base = np.zeros(10)
    base[0] = 10.0
    expected = np.stack([np.roll(base, i) for i in range(k)])
    np.testing.assert_array_equal(prior.means.numpy(), expected)
    distinct = np.unique(expected, axis=0)
    assert len(distinct) == min(k, 10)
    if k <= 10:
        assert _pairwise(prior.means).min() == pytest.approx(10.0 * np.sqrt(2))


def test_roll_repeats_modes_with_unequal_weights_in_the_mixture():
    # K = 25 in D = 10: modes 0-4 appear 3 times, 5-9 twice; the CDF is the weighted mixture.
    prior = GMMPrior.create(25, 10, placement="roll", dtype=torch.float64)
    z = torch.linspace(-3, 13, 50, dtype=torch.float64)[:, None].expand(50, 10)
    weights = np.array([3] * 5 + [2] * 5) / 25
    means = 10.0 * np.eye(10)
    expected = sum(w * stats.norm.cdf(z.numpy() - means[j]) for j, w in enumerate(weights))
    np.testing.assert_allclose(prior.cdf(z).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("placement", ["auto", "onehot", "spread", "sobol-doubling", "roll"])
def test_one_mode_is_the_unimodal_prior_under_every_placement(placement):
    prior = GMMPrior.create(1, 10, sigma=1.0, placement=placement, dtype=torch.float64)
    assert torch.count_nonzero(prior.means) == 0
    torch.testing.assert_close(prior.covariance(), torch.eye(10, dtype=torch.float64))


def test_auto_is_onehot_up_to_d_then_spread():
    for k, expected in ((10, "onehot"), (11, "spread")):
        auto = GMMPrior.create(k, 10, placement="auto", dtype=torch.float64)
        named = GMMPrior.create(k, 10, placement=expected, dtype=torch.float64)
        assert torch.equal(auto.means, named.means)


def test_sample_mode_frequencies_and_reproducibility():
    prior = GMMPrior.create(5, 5, scale=50.0)
    z1 = prior.sample(5000, torch.Generator().manual_seed(0))
    z2 = prior.sample(5000, torch.Generator().manual_seed(0))
    assert torch.equal(z1, z2)
    modes = torch.cdist(z1, prior.means).argmin(dim=1)
    counts = torch.bincount(modes, minlength=5).float() / 5000
    assert torch.all((counts - 0.2).abs() < 0.03)


def test_zero_weight_padding_leaves_cdf_and_covariance_unchanged_also_under_vmap():
    """The packed trainer pads a member's K modes with zero-weight ones and passes sigma as a tensor:
    the CDF and Sigma_P are those of the unpadded prior, one member at a time under vmap."""
    priors = [GMMPrior.create(k, 6, sigma=s, placement="spread", dtype=torch.float64) for k, s in ((3, 1.0), (5, 0.5))]
    means = torch.zeros(2, 5, 6, dtype=torch.float64)
    weights = torch.zeros(2, 5, dtype=torch.float64)
    for m, p in enumerate(priors):
        means[m, : p.num_modes], weights[m, : p.num_modes] = p.means, 1.0 / p.num_modes
    sigma = torch.tensor([p.sigma for p in priors], dtype=torch.float64)
    z = torch.randn(2, 7, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3

    def both(mu, w, s, zm):
        padded = GMMPrior(mu, s, w)
        return padded.cdf(zm), padded.covariance()

    cdf, cov = torch.func.vmap(both)(means, weights, sigma, z)
    for m, p in enumerate(priors):
        torch.testing.assert_close(cdf[m], p.cdf(z[m]), rtol=1e-14, atol=1e-14)
        torch.testing.assert_close(cov[m], p.covariance(), rtol=1e-12, atol=1e-12)
    # sampling follows the weights: every draw sits at one of the 3 real modes, never at a padded (origin) one
    draws = GMMPrior(means[0], 0.01, weights[0]).sample(3000, torch.Generator().manual_seed(1))
    nearest = torch.cdist(draws, means[0]).argmin(dim=1)
    assert set(nearest.tolist()) == {0, 1, 2}
    with pytest.raises(ValueError, match=r"weights must be \(K,\)"):
        GMMPrior(means[0], 1.0, weights[0, :3])
