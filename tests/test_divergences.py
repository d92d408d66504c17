"""Divergences against closed forms and independent references (torch.distributions, Gaussian TC)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from radae.divergences import (
    gaussian_kl,
    gaussian_log_density,
    log_importance_weights,
    sinkhorn_cost,
    sinkhorn_divergence,
    tc_decomposition,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_kl_of_standard_normal_is_zero():
    mu, logvar = torch.zeros(3, 7), torch.zeros(3, 7)
    assert torch.equal(gaussian_kl(mu, logvar), torch.zeros(3))


def test_kl_matches_torch_distributions():
    g = _gen(1)
    mu, logvar = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    mu_p, logvar_p = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    q = Normal(mu, (0.5 * logvar).exp())
    expected_std = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
    expected_gen = kl_divergence(q, Normal(mu_p, (0.5 * logvar_p).exp())).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected_std)
    torch.testing.assert_close(gaussian_kl(mu, logvar, mu_p, logvar_p), expected_gen)
    # the textbook VAE form -0.5 sum(1 + logvar - mu^2 - e^logvar)
    torch.testing.assert_close(gaussian_kl(mu, logvar), -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1))


def test_log_density_matches_torch_distributions():
    g = _gen(2)
    z, mu, logvar = (torch.randn(6, 3, generator=g) for _ in range(3))
    torch.testing.assert_close(gaussian_log_density(z, mu, logvar), Normal(mu, (0.5 * logvar).exp()).log_prob(z))


def test_stratified_weights_rows_sum_to_one_and_follow_chen_et_al():
    w = log_importance_weights(6, 1000).exp()
    torch.testing.assert_close(w.sum(1), torch.ones(6))
    m, n = 5, 1000
    assert w[2, 2].item() == pytest.approx(1 / n)
    assert w[2, 3].item() == pytest.approx((n - m) / (n * m))
    assert w[5, 0].item() == pytest.approx((n - m) / (n * m))  # wraps cyclically
    assert w[2, 0].item() == pytest.approx(1 / m)
    with pytest.raises(ValueError, match="dataset_size"):
        log_importance_weights(10, 5)


def _posterior_batch(mu: torch.Tensor, std: float, g: torch.Generator):
    logvar = torch.full_like(mu, 2 * math.log(std))
    return mu + std * torch.randn(mu.shape, generator=g), mu, logvar


def test_total_correlation_near_zero_for_independent_codes():
    g = _gen(3)
    # The batch is the whole data set (dataset_size = M), so log q(z) is the exact aggregate.
    z, mu, logvar = _posterior_batch(torch.randn(1000, 4, generator=g), 0.7, g)
    mi, tc, dwkl = tc_decomposition(z, mu, logvar, dataset_size=1000)
    assert abs(tc.item()) < 0.1
    # the three terms telescope to the sample KL estimate, which tracks the closed form
    kl_closed = gaussian_kl(mu, logvar).mean()
    assert (mi + tc + dwkl).item() == pytest.approx(kl_closed.item(), abs=0.25)


def test_total_correlation_positive_for_dependent_codes_and_matches_gaussian_tc():
    g = _gen(4)
    shared = torch.randn(1000, 1, generator=g).expand(1000, 4).contiguous()
    z, mu, logvar = _posterior_batch(shared, 0.7, g)
    _, tc, _ = tc_decomposition(z, mu, logvar, dataset_size=1000)
    # aggregate posterior is N(0, 0.49 I + 11^T): TC = 0.5 (sum log var_d - log det)
    cov = 0.49 * torch.eye(4) + torch.ones(4, 4)
    tc_true = 0.5 * (cov.diagonal().log().sum() - torch.logdet(cov)).item()
    assert tc.item() > 1.0
    assert tc.item() == pytest.approx(tc_true, abs=0.15)


def test_tc_decomposition_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        tc_decomposition(torch.zeros(4, 2), torch.zeros(4, 3), torch.zeros(4, 3), 10)


def test_sinkhorn_zero_for_identical_sets_and_grows_with_shift():
    x = torch.randn(64, 3, generator=_gen(5))
    assert abs(sinkhorn_divergence(x, x).item()) < 1e-6
    values = [sinkhorn_divergence(x, x + s).item() for s in (0.25, 0.5, 1.0, 2.0)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False))
    # a rigid shift s along all 3 axes moves every point by 3 s^2 in squared distance
    assert values[-1] == pytest.approx(3 * 2.0**2, rel=0.1)


def test_sinkhorn_cost_approaches_exact_w2_for_small_eps():
    # two points each: the optimal matching is the identity with cost mean ||x_i - y_i||^2
    x = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    y = torch.tensor([[0.0, 1.0], [10.0, 1.0]])
    assert sinkhorn_cost(x, y, eps=0.05, iters=100).item() == pytest.approx(1.0, abs=1e-3)


def test_sinkhorn_is_batched_over_leading_dims():
    g = _gen(6)
    x, y = torch.randn(3, 8, 2, generator=g), torch.randn(3, 8, 2, generator=g)
    batched = sinkhorn_divergence(x, y)
    single = torch.stack([sinkhorn_divergence(x[i], y[i]) for i in range(3)])
    torch.testing.assert_close(batched, single)
    with pytest.raises(ValueError, match="eps"):
        sinkhorn_cost(x, y, eps=0.0)
