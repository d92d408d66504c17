"""Lipschitz-VAE baseline (Barrett, Camuto, Willetts, Rainforth 2022, "Certifiably Robust VAEs").

The VAE of :mod:`radae.models.baselines.vae` (same prior, likelihood and objective, beta = 1) whose
encoder and decoder have prescribed Lipschitz constants, enforced by construction:

- :class:`BjorckLinear`: y = c * B(W) x + b, where B(W) is W orthonormalised by Bjorck iterations
  (Bjorck & Bowie 1971; Anil et al. 2019) A <- 1.5 A - 0.5 A A^T A, run in every forward pass so
  gradients flow through them. W is first divided by an upper bound of its spectral norm,
  (tr((G/|G|_F)^16))^(1/32) |G|_F^(1/2) with G the smaller Gram matrix (>= sigma_max, at most
  k^(1/32) sigma_max), so every singular value starts in (0, 1]; the iteration maps [0, 1] into
  [0, 1], hence ||B(W)||_2 <= 1 after ANY number of iterations, converged or not.
- :class:`GroupSort` activations (group size 2, "MaxMin"): 1-Lipschitz and gradient-norm
  preserving.
- Each network is a stack of such layers with the MLP widths of :mod:`radae.models.networks`
  (1024-200-200-200-200-out); the network's constant L is split evenly, c = L^(1/layers).

Constants (``baseline.lip_encoder`` = L_E, ``baseline.lip_decoder`` = L_D), following the paper,
which bounds the encoder (mean and standard deviation) and the decoder:

- encoder trunk h(x) in R^{2D}, L_E-Lipschitz; mean mu(x) = h_{1..D}(x) (L_E-Lipschitz), std
  s(x) = softplus(h_{D+1..2D}(x)) + ``baseline.min_std`` (L_E-Lipschitz, bounded below);
- decoder logits L_D-Lipschitz, then the sigmoid (1/4-Lipschitz): images G(z) are L_D/4-Lipschitz.

Certified bound (:meth:`LipschitzVAE.certified_bounds`): attacks act on the deterministic code
mu(x) and the reconstruction G(mu(x)), so for every ||delta||_2 <= lambda

    ||mu(x + delta) - mu(x)||_2 <= L_E lambda,    ||G(mu(x + delta)) - G(mu(x))||_2 <= L_E L_D lambda / 4.

This is the deterministic (mean-code) form of the paper's margin; their theorem 1 bounds the
probability that a stochastic reconstruction moves, which our evaluation does not measure.
Only the MLP architecture is supported (Bjorck-orthonormalised convolutions are out of scope):
``model.arch = conv`` raises a ConfigError.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from radae.config import ConfigError, RunConfig
from radae.models.base import MODELS
from radae.models.baselines.vae import GaussianVAE
from radae.models.networks import MLP_HIDDEN


@torch.no_grad()
def spectral_upper_bound(w: torch.Tensor, power: int = 16) -> torch.Tensor:
    """An upper bound of ||w||_2 within a factor k^(1/(2 power)) (k = min(w.shape)): (tr M^power)^(1/(2 power)).

    M = G / ||G||_F with G the smaller Gram matrix; the eigenvalues of M are in [0, 1] and the
    largest is >= 1/sqrt(k), so M^power does not underflow for power <= 16 at k <= 1e3 in float32.
    ``power`` must be a power of two (computed by repeated squaring).
    """
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    fro = gram.norm()
    m = gram / fro
    for _ in range(int(math.log2(power))):
        m = m @ m
    return (m.diagonal().sum().clamp_min(0) ** (1.0 / power) * fro).sqrt()


def bjorck(w: torch.Tensor, iters: int) -> torch.Tensor:
    """Bjorck orthonormalisation of w (out, in): ``iters`` steps of A <- 1.5 A - 0.5 A A^T A; ||result||_2 <= 1."""
    a = w / spectral_upper_bound(w).clamp_min(1e-12)
    for _ in range(iters):
        # the k x k Gram of the smaller side keeps every step O(k^2 max(out, in))
        a = 1.5 * a - 0.5 * ((a @ a.T) @ a if a.shape[0] <= a.shape[1] else a @ (a.T @ a))
    return a


class BjorckLinear(nn.Module):
    """y = c * bjorck(W) x + b: a linear layer with Lipschitz constant at most ``lipschitz`` (L2 norms)."""

    def __init__(self, n_in: int, n_out: int, lipschitz: float = 1.0, iters: int = 10) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        nn.init.orthogonal_(self.weight)
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.lipschitz, self.iters = float(lipschitz), int(iters)
        self._cache: tuple[int, torch.Tensor] | None = None

    def ortho_weight(self) -> torch.Tensor:
        """The effective weight c * bjorck(W).

        In eval mode the weights are constants (evaluation attacks differentiate w.r.t. the input
        only), so the result is computed once per weight version and reused, detached; in
        training mode it is recomputed, with gradients, in every forward pass.
        """
        if self.training:
            self._cache = None
            return self.lipschitz * bjorck(self.weight, self.iters)
        version = self.weight._version
        if self._cache is None or self._cache[0] != version or self._cache[1].device != self.weight.device:
            with torch.no_grad():
                self._cache = (version, self.lipschitz * bjorck(self.weight, self.iters))
        return self._cache[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.ortho_weight(), self.bias)


class GroupSort(nn.Module):
    """Sorts features in groups of ``group`` (2: MaxMin); a 1-Lipschitz permutation per input."""

    def __init__(self, group: int = 2) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, f = x.shape
        if f % self.group:
            raise ValueError(f"GroupSort needs features divisible by {self.group}, got {f}")
        return x.view(n, f // self.group, self.group).sort(dim=-1).values.view(n, f)


def lipschitz_mlp(sizes: list[int], lipschitz: float, iters: int) -> nn.Sequential:
    """BjorckLinear layers between ``sizes`` with GroupSort between them; overall constant <= ``lipschitz``."""
    per_layer = lipschitz ** (1.0 / (len(sizes) - 1))
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(BjorckLinear(n_in, n_out, per_layer, iters))
        if i < len(sizes) - 2:
            layers.append(GroupSort())
    return nn.Sequential(*layers)


@MODELS.register("lipschitz-vae")
class LipschitzVAE(GaussianVAE):
    """VAE with Bjorck/GroupSort MLPs of prescribed Lipschitz constants (see the module docstring)."""

    def __init__(
        self, encoder, decoder, image_shape, latent_dim, lip_encoder: float, lip_decoder: float, min_std: float, **kw
    ):
        super().__init__(encoder, decoder, image_shape, latent_dim, **kw)
        self.lip_encoder, self.lip_decoder, self.min_std = float(lip_encoder), float(lip_decoder), float(min_std)

    @classmethod
    def options(cls, cfg: RunConfig) -> dict:
        b = cfg.baseline
        return {
            **super().options(cfg),
            "lip_encoder": b.lip_encoder,
            "lip_decoder": b.lip_decoder,
            "min_std": b.min_std,
        }

    @classmethod
    def networks(cls, cfg: RunConfig, image_shape: tuple[int, int, int]) -> tuple[nn.Module, nn.Module]:
        if cfg.model.arch != "mlp":
            raise ConfigError(
                f"model.arch must be mlp for lipschitz-vae (Bjorck convolutions are not implemented), got {cfg.model.arch!r}"
            )
        pixels, d, b = math.prod(image_shape), cfg.model.latent_dim, cfg.baseline
        encoder = nn.Sequential(
            nn.Flatten(), lipschitz_mlp([pixels, *MLP_HIDDEN, 2 * d], b.lip_encoder, b.bjorck_iters)
        )
        decoder = nn.Sequential(
            lipschitz_mlp([d, *reversed(MLP_HIDDEN), pixels], b.lip_decoder, b.bjorck_iters),
            nn.Sigmoid(),
            nn.Unflatten(1, tuple(image_shape)),
        )
        return encoder, decoder

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mu = h_{1..D}, std = softplus(h_{D+1..2D}) + min_std; returns (mu, log std^2)."""
        mu, h = self.encoder(x).chunk(2, dim=1)
        return mu, 2 * torch.log(F.softplus(h) + self.min_std)

    def certified_bounds(self, radius: float = 1.0) -> dict[str, float]:
        """Worst-case L2 change for any ||delta||_2 <= ``radius``: of mu(x) (latent) and of G(mu(x)) (reconstruction)."""
        return {
            "latent_l2_bound": self.lip_encoder * radius,
            "reconstruction_l2_bound": self.lip_encoder * self.lip_decoder / 4.0 * radius,
        }
