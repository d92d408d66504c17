"""PNG figures a training run leaves behind: prior samples and test reconstructions.

Images are tiled into one grid with numpy and written with matplotlib's image writer (no
display, no pyplot state), so this works headless.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from radae.checkpoint import write_atomic
from radae.models import Autoencoder


def image_grid(images: torch.Tensor, nrow: int, pad: int = 2) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into an (rows*(H+pad)+pad, nrow*(W+pad)+pad, 3) array."""
    images = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = images.shape
    if c == 1:
        images = images.expand(n, 3, h, w)
    elif c != 3:
        raise ValueError(f"images must have 1 or 3 channels, got {c}")
    rows = math.ceil(n / nrow)
    grid = np.ones((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), dtype=np.float32)
    for i, image in enumerate(images.permute(0, 2, 3, 1).numpy()):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def save_grid(path: str | Path, images: torch.Tensor, nrow: int) -> Path:
    """Write ``images`` as one PNG grid of ``nrow`` columns, atomically; returns the path."""
    import matplotlib.image  # noqa: PLC0415  (imported on use: plotting is the last step of a run)

    grid = image_grid(images, nrow)
    return write_atomic(path, lambda tmp: matplotlib.image.imsave(tmp, grid, format="png"))


@torch.no_grad()
def save_samples(model: Autoencoder, path: str | Path, n: int = 64, seed: int = 0) -> Path:
    """A grid of n images decoded from codes drawn from the model's prior."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    images = model.sample(n, generator)
    model.train(was_training)
    return save_grid(path, images, nrow=int(math.sqrt(n)) or 1)


@torch.no_grad()
def save_reconstructions(model: Autoencoder, images: torch.Tensor, path: str | Path, per_row: int = 16) -> Path:
    """Rows of test images each followed by a row of their reconstructions."""
    was_training = model.training
    model.eval()
    per_row = max(1, min(per_row, len(images)))
    images = images[: per_row * min(2, len(images) // per_row)]
    recon = model.reconstruct(images)
    model.train(was_training)
    rows = [
        t for chunk, rchunk in zip(images.split(per_row), recon.split(per_row), strict=True) for t in (chunk, rchunk)
    ]
    return save_grid(path, torch.cat(rows), nrow=per_row)
