"""The interface every radae model implements, so training, evaluation and sweeps treat all alike.

A model owns an encoder and a decoder (built by :mod:`radae.models.networks`), a prior to sample
from, and its training objective:

- ``encode(x) -> z``: the deterministic code (a VAE's posterior mean); attacks act on it.
- ``decode(z) -> x``: images in [0, 1].
- ``reconstruct(x)``: ``decode(encode(x))``.
- ``sample(n, generator)``: images generated from the model's own prior.
- ``loss(x, generator) -> LossOutput``: the training objective on a batch; ``parts`` holds the
  named terms (floats are logged per epoch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class LossOutput:
    """A training objective's value and its named parts (all scalar tensors)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


class Autoencoder(nn.Module):
    """Base class: subclasses set ``self.encoder``, ``self.decoder`` and implement ``loss`` and ``sample_latent``."""

    latent_dim: int

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic code z = E(x), shape (N, D)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images G(z) in [0, 1], shape (N, C, H, W)."""
        return self.decoder(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes from the model's own prior, shape (n, D)."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n generated images: decode codes drawn from the model's prior."""
        return self.decode(self.sample_latent(n, generator))

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> LossOutput:
        raise NotImplementedError
