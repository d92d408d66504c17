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
from typing import TYPE_CHECKING

import torch
from torch import nn

from radae.registry import Registry

if TYPE_CHECKING:
    from radae.config import RunConfig

# Autoencoder subclasses by model name (cfg.model.name); each provides ``from_config(cfg, image_shape)``.
MODELS: Registry = Registry("model")


@dataclass
class LossOutput:
    """A training objective's value and its named parts (all scalar tensors)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


class Autoencoder(nn.Module):
    """Base class: subclasses set ``self.encoder``, ``self.decoder`` and implement ``loss`` and ``sample_latent``."""

    latent_dim: int
    image_shape: tuple[int, int, int]

    @classmethod
    def from_config(cls, cfg: RunConfig, image_shape: tuple[int, int, int]) -> Autoencoder:
        """Build the model a run config describes for images of ``image_shape`` (C, H, W)."""
        raise NotImplementedError

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


def create_model(cfg: RunConfig, image_shape: tuple[int, int, int]) -> Autoencoder:
    """The model ``cfg.model.name`` built from ``cfg`` (unknown names list the registered ones)."""
    return MODELS.get(cfg.model.name).from_config(cfg, tuple(int(s) for s in image_shape))
