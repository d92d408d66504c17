"""Latent noise left on at evaluation (``eval.decode_noise_latent`` / ``eval.decode_noise_max_damage``).

The authors' released attack scripts build the model with its training-time latent noise still
on: every decode sees z + s * xi, xi ~ N(0, I), a fresh draw per call (s = 0.4 in
``latentspaceattack.py``, 0.004 in ``outputattack.py``; method.md, "Evaluation"). Wrapping a
model in :class:`NoisyDecoding` reproduces that for one attack: its objective (the max-damage
attack decodes) and every reconstruction its metrics compare. Encoding stays deterministic.
"""

from __future__ import annotations

from typing import Any

import torch


class NoisyDecoding:
    """``model`` with decode(z) = model.decode(z + std * xi); ``encode`` and the rest unchanged."""

    def __init__(self, model: Any, std: float, generator: torch.Generator) -> None:
        if std < 0:
            raise ValueError(f"decode noise std must be >= 0, got {std}")
        self.model, self.std, self.generator = model, float(std), generator

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(z.shape, generator=self.generator, dtype=z.dtype).to(z.device)
        return self.model.decode(z + self.std * noise)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)
