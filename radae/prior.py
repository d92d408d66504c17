"""The Gaussian-mixture prior P on the latent space (method.md, "Prior").

P = (1/K) sum_k N(mu_k, sigma^2 I) in R^D: equal weights, shared isotropic std. K = 1 is the
unimodal prior N(0, sigma^2 I) (paper appendix A.1) under every placement. Mode placements
(registry :data:`PLACEMENTS`, config ``prior.placement``):

- ``onehot``: mu_k = s * e_k (needs K <= D); pairwise distance s * sqrt(2).
- ``spread``: K quasi-random (scrambled Sobol) directions, mapped through the normal inverse CDF
  so they are uniform on the sphere, normalised, then scaled so that the smallest distance
  between two means is exactly ``min_distance * sigma``. Deterministic for a seed, any K.
- ``sobol-doubling``: the authors' ``set_gmm_centers_sobol`` (GMM_DAE / Robust_GMM_DAE
  utils.py): unscrambled Sobol points through the normal inverse CDF, normalised, then doubled
  until the smallest pairwise distance is at least ``min_distance * sigma`` (so it ends in
  [min_distance, 2 min_distance) sigma). Any K, no seed. The first two unscrambled points (all 0
  and all 1/2) map to -inf and to the origin, which have no direction; the sequence starts after
  them (the authors' ``skip=1`` would start at the all-1/2 point).
- ``roll``: the authors' ``set_gmm_centers``: mu_k = s * e_(k mod D) (np.roll), so K > D repeats
  modes (K = 25 in D = 10: 10 distinct means, 5 of them weighted 3/25, 5 weighted 2/25).
- ``auto``: onehot when K <= D, else spread (radae's original behaviour; it changes the geometry
  at K = D, so a K sweep should name one of the placements above instead).
"""

from __future__ import annotations

import math

import torch

from radae.registry import Registry

PLACEMENTS: Registry = Registry("mode placement")


@PLACEMENTS.register("onehot")
def onehot_means(num_modes: int, latent_dim: int, scale: float, **_: object) -> torch.Tensor:
    """mu_k = scale * e_k, shape (K, D)."""
    if num_modes > latent_dim:
        raise ValueError(f"onehot placement needs num_modes <= latent_dim, got K={num_modes} > D={latent_dim}")
    means = torch.zeros(num_modes, latent_dim, dtype=torch.float64)
    means[torch.arange(num_modes), torch.arange(num_modes)] = scale
    return means


@PLACEMENTS.register("spread")
def spread_means(
    num_modes: int, latent_dim: int, sigma: float, min_distance: float, seed: int, **_: object
) -> torch.Tensor:
    """K Sobol directions on the unit sphere, scaled to a minimum pairwise distance of min_distance * sigma."""
    engine = torch.quasirandom.SobolEngine(latent_dim, scramble=True, seed=seed)
    u = engine.draw(num_modes, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
    directions = math.sqrt(2.0) * torch.erfinv(2 * u - 1)  # standard-normal quantiles: isotropic
    if latent_dim == 1:
        directions = torch.linspace(-1.0, 1.0, num_modes, dtype=torch.float64)[:, None]
    else:
        directions = directions / directions.norm(dim=1, keepdim=True)
    dist = torch.cdist(directions, directions)
    dist.fill_diagonal_(math.inf)
    closest = dist.min()
    if not torch.isfinite(closest) or closest <= 1e-9:
        raise ValueError(f"spread placement produced coinciding modes for K={num_modes}, D={latent_dim}, seed={seed}")
    return directions * (min_distance * sigma / closest)


@PLACEMENTS.register("sobol-doubling")
def sobol_doubling_means(
    num_modes: int, latent_dim: int, sigma: float, min_distance: float, **_: object
) -> torch.Tensor:
    """Unscrambled Sobol normal directions, doubled until the smallest pairwise distance >= min_distance * sigma."""
    engine = torch.quasirandom.SobolEngine(latent_dim, scramble=False)
    engine.fast_forward(2)  # points 0 (all 0) and 1 (all 1/2) map to -inf and to the origin
    u = engine.draw(num_modes, dtype=torch.float64)
    directions = math.sqrt(2.0) * torch.erfinv(2 * u - 1)
    directions = directions / directions.norm(dim=1, keepdim=True)
    dist = torch.cdist(directions, directions)
    dist.fill_diagonal_(math.inf)
    closest = float(dist.min())
    if not math.isfinite(closest) or closest <= 1e-9:
        raise ValueError(f"sobol-doubling placement produced coinciding modes for K={num_modes}, D={latent_dim}")
    doublings = max(0, math.ceil(math.log2(min_distance * sigma / closest)))
    if closest * 2.0**doublings < min_distance * sigma:  # log2 rounding at an exact power of two
        doublings += 1
    return directions * 2.0**doublings


@PLACEMENTS.register("roll")
def roll_means(num_modes: int, latent_dim: int, scale: float, **_: object) -> torch.Tensor:
    """mu_k = scale * e_(k mod D) for k = 0..K-1: the authors' np.roll placement (modes repeat when K > D)."""
    means = torch.zeros(num_modes, latent_dim, dtype=torch.float64)
    means[torch.arange(num_modes), torch.arange(num_modes) % latent_dim] = scale
    return means


@PLACEMENTS.register("auto")
def auto_means(num_modes: int, latent_dim: int, **kwargs: object) -> torch.Tensor:
    """onehot when K <= D, else spread."""
    return PLACEMENTS.get(resolve_placement("auto", num_modes, latent_dim))(
        num_modes=num_modes, latent_dim=latent_dim, **kwargs
    )


def resolve_placement(placement: str, num_modes: int, latent_dim: int) -> str:
    """The placement actually used: ``auto`` becomes onehot when K <= D, else spread; others stay."""
    if placement != "auto":
        return placement
    return "onehot" if num_modes <= latent_dim else "spread"


class GMMPrior:
    """Gaussian mixture with means ``means`` (K, D), shared std ``sigma`` and equal mode weights.

    Build one with :meth:`create`; every method is differentiable in ``z`` and runs on the
    device of the means (move with :meth:`to`). ``cdf`` and ``covariance`` are what the losses
    call, for one model and for a pack of trials under ``torch.func.vmap`` (:mod:`radae.fast`),
    which pads a member's K modes to the pack's largest K with zero ``weights`` (K,) and gives
    ``sigma`` as a tensor (one per member; a tensor is not range-checked).
    """

    def __init__(
        self, means: torch.Tensor, sigma: float | torch.Tensor = 1.0, weights: torch.Tensor | None = None
    ) -> None:
        if means.ndim != 2:
            raise ValueError(f"means must be (K, D), got shape {tuple(means.shape)}")
        if weights is not None and tuple(weights.shape) != (means.shape[0],):
            raise ValueError(f"weights must be (K,) = ({means.shape[0]},), got shape {tuple(weights.shape)}")
        if not isinstance(sigma, torch.Tensor):
            if sigma <= 0:
                raise ValueError(f"sigma must be > 0, got {sigma}")
            sigma = float(sigma)
        self.means, self.sigma, self.weights = means, sigma, weights

    @classmethod
    def create(
        cls,
        num_modes: int,
        latent_dim: int,
        sigma: float = 1.0,
        placement: str = "auto",
        scale: float = 10.0,
        min_distance: float = 6.0,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> GMMPrior:
        """Place K modes in D dimensions with the registered ``placement``; K = 1 is N(0, sigma^2 I) under all."""
        if num_modes < 1 or latent_dim < 1:
            raise ValueError(f"need num_modes >= 1 and latent_dim >= 1, got K={num_modes}, D={latent_dim}")
        if num_modes == 1:
            means = torch.zeros(1, latent_dim, dtype=torch.float64)
        else:
            means = PLACEMENTS.get(placement)(
                num_modes=num_modes,
                latent_dim=latent_dim,
                scale=scale,
                sigma=sigma,
                min_distance=min_distance,
                seed=seed,
            )
        return cls(means.to(dtype=dtype, device=device), sigma)

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.means.shape[1]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> GMMPrior:
        weights = None if self.weights is None else self.weights.to(device=device, dtype=dtype)
        return GMMPrior(self.means.to(device=device, dtype=dtype), self.sigma, weights)

    def cdf(self, z: torch.Tensor) -> torch.Tensor:
        """Per-dimension marginal CDF F_d(t) = sum_k w_k Phi((t - mu_kd) / sigma), w_k = 1/K; shape of ``z`` (..., D).

        Tensors only (no Python branching on values), so it runs under ``torch.func.vmap``.
        """
        t = (z.unsqueeze(-2) - self.means.to(z.dtype)) / self.sigma  # (..., K, D)
        phi = 0.5 * (1.0 + torch.erf(t / math.sqrt(2.0)))
        if self.weights is None:
            return phi.mean(dim=-2)
        return (phi * self.weights.to(z.dtype).unsqueeze(-1)).sum(dim=-2)

    def mean(self) -> torch.Tensor:
        """Mixture mean mubar = sum_k w_k mu_k, shape (D,)."""
        return self.means.mean(dim=0) if self.weights is None else self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        """Sigma_P = sigma^2 I + sum_k w_k (mu_k - mubar)(mu_k - mubar)^T (law of total variance, w_k = 1/K), (D, D)."""
        centred = self.means - self.mean()
        if self.weights is None:
            between = centred.T @ centred / self.num_modes
        else:
            between = (centred * self.weights.unsqueeze(-1)).T @ centred
        return self.sigma**2 * torch.eye(self.latent_dim, dtype=self.means.dtype, device=self.means.device) + between

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes: k ~ U{1..K} (or the weights), z ~ N(mu_k, sigma^2 I); shape (n, D), on the means' device."""
        device = self.means.device if generator is None else generator.device
        if self.weights is None:
            k = torch.randint(self.num_modes, (n,), generator=generator, device=device)
        else:
            k = torch.multinomial(self.weights.to(device), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.latent_dim, generator=generator, device=device, dtype=self.means.dtype)
        return (self.means.to(device)[k] + self.sigma * noise).to(self.means.device)
