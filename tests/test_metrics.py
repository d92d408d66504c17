"""MS-SSIM and L2 (radae.metrics): defined and discriminative on 32x32 / 64x64, agrees with pytorch-msssim."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from radae.metrics import MSSSIM_WEIGHTS, gaussian_window, l2_distance, ms_ssim

MNIST = Path("/work/shared/data/mnist/t10k-images-idx3-ubyte.gz")


def mnist_test_images(n: int) -> torch.Tensor:
    """The first n real MNIST test digits, padded to 32x32, float in [0, 1]."""
    if not MNIST.exists():
        pytest.skip(f"real MNIST not found at {MNIST}")
    with gzip.open(MNIST) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    return F.pad(torch.from_numpy(raw.copy()).float() / 255.0, (2, 2, 2, 2))


def smooth_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Random smooth RGB images (blurred noise) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, 3, size // 8, size // 8, generator=g)
    return F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.mark.parametrize("size", [32, 64])
def test_identical_images_score_one(size):
    x = smooth_images(4, size)
    assert torch.allclose(ms_ssim(x, x), torch.ones(4), atol=1e-5)
    assert torch.equal(l2_distance(x, x), torch.zeros(4))


@pytest.mark.parametrize("size", [32, 64])
def test_score_falls_monotonically_with_noise(size):
    x = smooth_images(6, size, seed=1)
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(x.shape, generator=g)
    scores = torch.stack([ms_ssim(x, (x + s * noise).clamp(0, 1)) for s in (0.02, 0.05, 0.1, 0.2, 0.4)])
    assert (scores[1:] < scores[:-1]).all(), scores
    assert scores[0].min() > 0.95 and scores[-1].max() < 0.85


def test_distinct_mnist_digits_score_below_one_and_noise_orders_them():
    x = mnist_test_images(20)
    s = ms_ssim(x[:10], x[10:])
    assert s.shape == (10,)
    assert (s < 0.9).all(), s
    # A slightly noisy copy of a digit is closer to it than another digit is.
    noisy = (x[:10] + 0.05 * torch.randn(x[:10].shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert (ms_ssim(x[:10], noisy) > s).all()


@pytest.mark.parametrize("size,win", [(192, 11), (256, 7)])
def test_agrees_with_pytorch_msssim_on_large_images(size, win):
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    x = smooth_images(3, size, seed=3)
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(4))).clamp(0, 1)
    ours = ms_ssim(x.double(), y.double(), win_size=win, win_sigma=1.5)
    ref = pytorch_msssim.ms_ssim(
        x.double(), y.double(), data_range=1.0, size_average=False, win_size=win, win_sigma=1.5
    )
    assert torch.allclose(ours, ref, atol=1e-6), (ours, ref)


def test_window_shrinks_to_fit_every_scale_of_32x32():
    # Window of 6 at 32, 16, 8; 4 and 2 at the coarsest scales: every scale contributes.
    x = smooth_images(2, 32, seed=5)
    y = x.flip(-1)
    score = ms_ssim(x, y)
    assert torch.isfinite(score).all() and (score > 0).all() and (score < 1).all()
    assert torch.allclose(gaussian_window(6, 1.5).sum(), torch.tensor(1.0))
    assert torch.allclose(gaussian_window(6, 1.5), gaussian_window(6, 1.5).flip(0))
    assert len(MSSSIM_WEIGHTS) == 5 and abs(sum(MSSSIM_WEIGHTS) - 1.0) < 1e-3


def test_l2_distance_per_image():
    x = torch.zeros(3, 1, 4, 4)
    y = x.clone()
    y[1] += 0.5  # 16 pixels at 0.5 -> sqrt(16 * 0.25) = 2
    y[2, 0, 0, 0] = 3.0
    assert torch.allclose(l2_distance(x, y), torch.tensor([0.0, 2.0, 3.0]))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="one shape"):
        ms_ssim(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="sides >= 16"):
        ms_ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
