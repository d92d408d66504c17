"""How 28x28 MNIST-like images become the paper's 32x32 (``data.resize``), on uint8 arrays.

- ``bilinear`` (default): the paper's input. It uses 32x32 MNIST and FashionMNIST "as in"
  GMM_DAE, whose README resizes the 28x28 images to 32x32 (its loader's ``Rescale`` calls
  skimage's ``transform.resize``: order 1, mode 'reflect', no anti-aliasing when enlarging,
  floats in [0, 1]). Output pixel o of n_out samples the input at the pixel-centre coordinate

      s = (o + 0.5) * n_in / n_out - 0.5,   value = (1 - t) * in[i] + t * in[i + 1],
      i = floor(s), t = s - i,

  separably along rows and columns. Neighbours outside the image are mirrored about the edge
  pixel (skimage's 'reflect', numpy's 'reflect', ndimage's 'mirror': index -1 reads 1, n_in reads
  n_in - 2). For 28 -> 32 only the outermost rows and columns reach outside (s = -0.0625 and
  27.0625); ``F.interpolate(..., align_corners=False)`` uses the same s but clamps there, so it
  differs from skimage on the border (by up to 1/16 of the step to the next pixel). The result,
  a multiple of 1/256 of a grey level, is rounded to the nearest uint8 (ties to even), as an
  8-bit image file of the resized digits stores it.
- ``pad``: 2 zero pixels on every side (radae before the paper's resize was adopted): the digit
  stays at 28x28 inside a 32x32 frame, ~8% smaller L2 norm than the resized one.
"""

from __future__ import annotations

import numpy as np
import torch

from radae.registry import Registry

RESIZERS: Registry = Registry("data.resize mode")
SIZE = 32


def linear_weights(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float64 matrix of 1-D linear interpolation with mirrored borders (module doc).

    Only enlarging (n_out >= n_in) is supported: shrinking would need skimage's anti-aliasing.
    """
    if n_out < n_in:
        raise ValueError(f"linear_weights enlarges only, got {n_in} -> {n_out}")
    s = (torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    i = torch.floor(s)
    t = s - i
    i = i.long()

    def mirror(k: torch.Tensor) -> torch.Tensor:
        k = k.abs()  # -1 -> 1
        return torch.where(k > n_in - 1, 2 * (n_in - 1) - k, k)  # n_in -> n_in - 2

    rows = torch.arange(n_out)
    out = torch.zeros(n_out, n_in, dtype=torch.float64)
    out.index_put_((rows, mirror(i)), 1 - t, accumulate=True)
    out.index_put_((rows, mirror(i + 1)), t, accumulate=True)
    return out


def bilinear_float(images: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """Resize (..., H, W) float images to (..., size, size) as in the module doc (no rounding)."""
    a_h = linear_weights(images.shape[-2], size).to(images.dtype)
    a_w = linear_weights(images.shape[-1], size).to(images.dtype)
    return a_h @ images @ a_w.T


@RESIZERS.register("bilinear")
def bilinear(images: np.ndarray, size: int = SIZE, chunk: int = 10000) -> np.ndarray:
    """uint8 (N, H, W) -> uint8 (N, size, size), bilinear as skimage's resize, rounded.

    float32 is exact here: weights are multiples of 1/16 per axis, so every value is a multiple of
    1/256 below 256 (16 significant bits); chunks bound the memory of the 70,000-image sets.
    """
    out = np.empty((len(images), size, size), dtype=np.uint8)
    for begin in range(0, len(images), chunk):
        block = torch.tensor(images[begin : begin + chunk], dtype=torch.float32)  # a copy: read-only arrays are fine
        out[begin : begin + chunk] = bilinear_float(block, size).round().clamp(0, 255).to(torch.uint8).numpy()
    return out


@RESIZERS.register("pad")
def pad(images: np.ndarray, size: int = SIZE) -> np.ndarray:
    """uint8 (N, H, W) -> uint8 (N, size, size): the image centred in a zero frame."""
    top, left = (size - images.shape[1]) // 2, (size - images.shape[2]) // 2
    if top < 0 or left < 0:
        raise ValueError(f"pad cannot shrink {images.shape[1:]} images to {size}x{size}")
    bottom, right = size - images.shape[1] - top, size - images.shape[2] - left
    return np.pad(images, ((0, 0), (top, bottom), (left, right)))


def resize(images: np.ndarray, mode: str, size: int = SIZE) -> np.ndarray:
    """``images`` uint8 (N, H, W) brought to (N, size, size) by the ``data.resize`` mode ``mode``."""
    return RESIZERS.get(mode)(images, size)
