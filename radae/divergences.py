"""Divergences the baseline models need: pure functions of tensors, no state.

- :func:`gaussian_kl`: closed-form KL between diagonal Gaussians (Kingma & Welling 2014, app. B),
  the VAE's prior term.
- :func:`gaussian_log_density`: log N(z; mu, diag exp(logvar)) per coordinate.
- :func:`log_importance_weights` and :func:`tc_decomposition`: the beta-TCVAE decomposition of
  the averaged KL into index-code mutual information, total correlation and dimension-wise KL,
  estimated with minibatch stratified sampling (Chen et al. 2018, "Isolating Sources of
  Disentanglement in VAEs", eq. 2 and appendix C.2).
- :func:`sinkhorn_cost` and :func:`sinkhorn_divergence`: entropy-regularised optimal transport
  between uniform point clouds (Cuturi 2013; the debiased divergence of Genevay et al. 2018 /
  Feydy et al. 2019), computed with log-domain Sinkhorn iterations, batched over leading dims.
"""

from __future__ import annotations

import math

import torch

_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    mu_p: torch.Tensor | float = 0.0,
    logvar_p: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """KL(N(mu, diag e^logvar) || N(mu_p, diag e^logvar_p)), summed over the last dimension.

    Per coordinate: 0.5 * (logvar_p - logvar + (e^logvar + (mu - mu_p)^2) / e^logvar_p - 1).
    With the defaults (standard normal prior) this is the VAE term
    -0.5 * sum(1 + logvar - mu^2 - e^logvar). Shapes broadcast; returns shape ``mu.shape[:-1]``.
    """
    # Python floats stay floats (no host-to-device tensor inside a CUDA-graph-captured step).
    inv_var_p = math.exp(-logvar_p) if isinstance(logvar_p, float | int) else torch.exp(-logvar_p)
    per_dim = 0.5 * (logvar_p - logvar + (logvar.exp() + (mu - mu_p).pow(2)) * inv_var_p - 1.0)
    return per_dim.sum(dim=-1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, e^logvar) = -0.5 (log 2 pi + logvar + (z - mu)^2 e^-logvar); shapes broadcast."""
    return -0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def log_importance_weights(batch_size: int, dataset_size: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Log weights of minibatch stratified sampling (Chen et al. 2018, appendix C.2), shape (M, M).

    To estimate q(z_i) = E_{n ~ data} q(z_i | x_n) from a batch of M samples drawn without
    replacement from N data points, the sample's own term q(z_i | x_i) gets weight 1/N, one other
    term (the next element, cyclically) gets (N - M + 1) / (N (M - 1)), and the remaining M - 2
    get 1/(M - 1). Row i holds the weights of the terms j used for z_i; every row sums to 1.
    (The authors' code, rtqichen/beta-tcvae, puts the stratum weight at (i, i + 1) but misplaces it
    for the last two rows, whose weights then do not sum to 1; this version wraps cyclically.)
    """
    if batch_size < 2:
        raise ValueError(f"minibatch stratified sampling needs batch_size >= 2, got {batch_size}")
    if dataset_size < batch_size:
        raise ValueError(f"dataset_size ({dataset_size}) must be >= batch_size ({batch_size})")
    n, m = dataset_size, batch_size - 1
    # Built on the target device from Python scalars (no host-to-device copy: CUDA-graph safe).
    w = torch.full((batch_size, batch_size), 1.0 / m, dtype=torch.float64, device=device)
    rows = torch.arange(batch_size, device=device)
    w[rows, (rows + 1) % batch_size] = (n - m) / (n * m)
    w[rows, rows] = 1.0 / n
    return w.log().to(dtype)


def tc_decomposition(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch estimates of (mutual information, total correlation, dimension-wise KL), Chen et al. eq. 2.

    ``z`` (M, D) holds one posterior sample per input, ``mu``/``logvar`` (M, D) the posteriors. With
    log q(z_i) and log prod_d q(z_id) estimated by minibatch stratified sampling (weights
    :func:`log_importance_weights`):

    - MI  = mean_i [log q(z_i|x_i) - log q(z_i)]
    - TC  = mean_i [log q(z_i) - sum_d log q(z_id)]
    - dwKL = mean_i [sum_d log q(z_id) - log p(z_i)], p = N(0, I).

    Their sum is the sample estimate of the averaged KL(q(z|x) || p(z)). Returns three scalars.
    """
    if z.shape != mu.shape or z.shape != logvar.shape or z.dim() != 2:
        raise ValueError(
            f"z, mu and logvar must share one (M, D) shape, got {tuple(z.shape)}, {tuple(mu.shape)}, {tuple(logvar.shape)}"
        )
    batch = z.shape[0]
    # pair[i, j, d] = log q(z_id | x_j)
    pair = gaussian_log_density(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))
    logw = log_importance_weights(batch, dataset_size, device=z.device, dtype=z.dtype)
    log_qz = torch.logsumexp(logw + pair.sum(dim=2), dim=1)
    log_qz_prod = torch.logsumexp(logw.unsqueeze(2) + pair, dim=1).sum(dim=1)
    log_qz_x = gaussian_log_density(z, mu, logvar).sum(dim=1)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=1)
    return (log_qz_x - log_qz).mean(), (log_qz - log_qz_prod).mean(), (log_qz_prod - log_pz).mean()


def _sq_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean cost C[..., i, j] = ||x_i - y_j||^2 for x (..., n, D), y (..., m, D)."""
    return (x.unsqueeze(-2) - y.unsqueeze(-3)).pow(2).sum(dim=-1)


def sinkhorn_cost(x: torch.Tensor, y: torch.Tensor, eps: float = 0.1, iters: int = 50) -> torch.Tensor:
    """Entropy-regularised transport cost <P*, C> between uniform point clouds (Cuturi 2013).

    P* = argmin_{P in U(a, b)} <P, C> - eps H(P), C_ij = ||x_i - y_j||^2, a = 1/n, b = 1/m, found
    with ``iters`` log-domain Sinkhorn updates of the dual potentials
    f_i = -eps LSE_j(log b_j + (g_j - C_ij)/eps), g_j = -eps LSE_i(log a_i + (f_i - C_ij)/eps);
    P_ij = a_i b_j exp((f_i + g_j - C_ij)/eps). ``x`` (..., n, D), ``y`` (..., m, D); leading
    dimensions are batched. Returns shape ``x.shape[:-2]``. Gradients flow through the unrolled
    iterations. The cost grows as eps -> 0 to the squared 2-Wasserstein distance.
    """
    if x.shape[:-2] != y.shape[:-2] or x.shape[-1] != y.shape[-1]:
        raise ValueError(f"point clouds must share batch and feature dims, got {tuple(x.shape)} and {tuple(y.shape)}")
    if eps <= 0 or iters < 1:
        raise ValueError(f"sinkhorn needs eps > 0 and iters >= 1, got eps={eps}, iters={iters}")
    cost = _sq_dist(x, y)
    n, m = cost.shape[-2], cost.shape[-1]
    log_a, log_b = -math.log(n), -math.log(m)
    f = torch.zeros(cost.shape[:-1], dtype=cost.dtype, device=cost.device)
    g = torch.zeros(cost.shape[:-2] + (m,), dtype=cost.dtype, device=cost.device)
    for _ in range(iters):
        f = -eps * torch.logsumexp(log_b + (g.unsqueeze(-2) - cost) / eps, dim=-1)
        g = -eps * torch.logsumexp(log_a + (f.unsqueeze(-1) - cost) / eps, dim=-2)
    plan = torch.exp(log_a + log_b + (f.unsqueeze(-1) + g.unsqueeze(-2) - cost) / eps)
    return (plan * cost).sum(dim=(-2, -1))


def sinkhorn_divergence(x: torch.Tensor, y: torch.Tensor, eps: float = 0.1, iters: int = 50) -> torch.Tensor:
    """Debiased Sinkhorn divergence S(x, y) = W(x, y) - (W(x, x) + W(y, y)) / 2, W = :func:`sinkhorn_cost`.

    The entropic term makes W(x, x) > 0; subtracting the self terms gives S(x, x) = 0 exactly and
    S >= 0 (Feydy et al. 2019), so minimising S pulls ``y`` onto ``x`` rather than shrinking both.
    Shapes as in :func:`sinkhorn_cost`.
    """
    return sinkhorn_cost(x, y, eps, iters) - 0.5 * (sinkhorn_cost(x, x, eps, iters) + sinkhorn_cost(y, y, eps, iters))
