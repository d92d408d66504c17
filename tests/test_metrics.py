"""MS-SSIM and L2 (radae.metrics): defined and discriminative on 32x32 / 64x64, agrees with pytorch-msssim;
the paper's MS-SSIM agrees with a per-pixel transcription of jorge-pessoa's msssim."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from radae.metrics import MSSSIM_WEIGHTS, gaussian_window, l2_distance, ms_ssim, ms_ssim_paper

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


# --- the paper's MS-SSIM (jorge-pessoa's msssim(a, b, window_size=6, normalize="relu")) ----------


def reference_msssim_paper(img1: np.ndarray, img2: np.ndarray, window_size: int = 6) -> float:
    """jorge-pessoa's msssim for ONE image (C, H, W), transcribed pixel by pixel in float64.

    Written from that function's definition, not from radae's code: 2-D window = outer product of
    gaussian(size, 1.5) centred at size // 2, size = min(window_size, H, W); valid correlation;
    L inferred from img1 at each scale; means over C and pixels; relu; 2x2 pooling (floor);
    result prod(mcs[:-1] ** w[:-1] * ssim[-1] ** w[-1]).
    """
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    ssims, mcs = [], []
    for _ in weights:
        c, h, w = img1.shape
        size = min(window_size, h, w)
        g = np.array([np.exp(-((i - size // 2) ** 2) / (2 * 1.5**2)) for i in range(size)])
        g /= g.sum()
        win = np.outer(g, g)
        top = 255.0 if img1.max() > 128 else 1.0
        bottom = -1.0 if img1.min() < -0.5 else 0.0
        c1, c2 = (0.01 * (top - bottom)) ** 2, (0.03 * (top - bottom)) ** 2
        ssim_sum = cs_sum = 0.0
        count = 0
        for ch in range(c):
            for i in range(h - size + 1):
                for j in range(w - size + 1):
                    p1, p2 = img1[ch, i : i + size, j : j + size], img2[ch, i : i + size, j : j + size]
                    mu1, mu2 = (win * p1).sum(), (win * p2).sum()
                    s11 = (win * p1 * p1).sum() - mu1 * mu1
                    s22 = (win * p2 * p2).sum() - mu2 * mu2
                    s12 = (win * p1 * p2).sum() - mu1 * mu2
                    v1, v2 = 2 * s12 + c2, s11 + s22 + c2
                    cs_sum += v1 / v2
                    ssim_sum += (2 * mu1 * mu2 + c1) * v1 / ((mu1 * mu1 + mu2 * mu2 + c1) * v2)
                    count += 1
        ssims.append(max(ssim_sum / count, 0.0))
        mcs.append(max(cs_sum / count, 0.0))
        hh, ww = h // 2, w // 2
        img1 = img1[:, : 2 * hh, : 2 * ww].reshape(c, hh, 2, ww, 2).mean(axis=(2, 4)) if hh and ww else img1
        img2 = img2[:, : 2 * hh, : 2 * ww].reshape(c, hh, 2, ww, 2).mean(axis=(2, 4)) if hh and ww else img2
    return float(np.prod([mcs[j] ** weights[j] * ssims[-1] ** weights[-1] for j in range(len(weights) - 1)]))


def pairs(shape, scale: float = 1.0, shift: float = 0.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth-ish random images (N, C, H, W) and noisy copies, mapped to [shift, shift + scale]."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    x = F.interpolate(torch.rand(n, c, h // 4, w // 4, generator=g), size=(h, w), mode="bilinear", align_corners=False)
    y = (x + 0.2 * torch.randn(shape, generator=g)).clamp(0, 1)
    return (x * scale + shift).double(), (y * scale + shift).double()


@pytest.mark.parametrize(
    "shape,scale,shift",
    [
        ((2, 1, 32, 32), 1.0, 0.0),  # the evaluation's case: 32x32 grey in [0, 1] (L = 1)
        ((1, 3, 16, 16), 1.0, 0.0),  # 3 channels; the coarsest scale is 1x1 with a 1-tap window
        ((1, 1, 23, 37), 1.0, 0.0),  # odd sides: pooling floors them
        ((1, 1, 32, 32), 255.0, 0.0),  # [0, 255]: L = 255
        ((1, 2, 20, 20), 2.0, -1.0),  # [-1, 1]: L = 2
    ],
)
def test_paper_msssim_matches_a_per_pixel_transcription(shape, scale, shift):
    x, y = pairs(shape, scale, shift, seed=sum(shape))
    ours = ms_ssim_paper(x, y)
    ref = [reference_msssim_paper(a.numpy(), b.numpy()) for a, b in zip(x, y, strict=True)]
    ref = torch.tensor(ref, dtype=torch.float64)
    assert ours.shape == (shape[0],)
    assert torch.allclose(ours, ref, rtol=1e-9, atol=1e-12), ours - ref
    assert (ref > 0.05).all() and (ref < 0.99).all()  # a discriminative case, not a trivial 0 or 1


def test_paper_msssim_of_constant_images_by_hand():
    # Constant images a and b: every variance and covariance is 0, so cs = C2 / C2 = 1 at every scale and
    # ssim = l = (2ab + C1) / (a^2 + b^2 + C1) everywhere. The paper's product has the coarsest ssim 4 times:
    # l^(4 * 0.1333); the standard MS-SSIM has it once: l^0.1333.
    a, b, c1 = 0.2, 0.6, 0.01**2
    lum = (2 * a * b + c1) / (a * a + b * b + c1)  # 0.24 + 1e-4 over 0.40 + 1e-4 = 0.60009997...
    x, y = torch.full((1, 1, 32, 32), a, dtype=torch.float64), torch.full((1, 1, 32, 32), b, dtype=torch.float64)
    assert ms_ssim_paper(x, y).item() == pytest.approx(lum ** (4 * 0.1333), rel=1e-12)
    assert ms_ssim(x, y).item() == pytest.approx(lum**0.1333, rel=1e-12)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_paper_msssim_of_identical_images_is_one(size):
    x = smooth_images(3, size, seed=7)
    assert torch.allclose(ms_ssim_paper(x, x), torch.ones(3), atol=1e-5)
    assert torch.allclose(ms_ssim_paper(x * 255, x * 255), torch.ones(3), atol=1e-5)


def test_paper_window_is_centred_at_size_div_2():
    # gaussian(6, 1.5) of the original: exp(-(i - 3)^2 / 4.5), peak at tap 3 (off-centre), not symmetric.
    win = gaussian_window(6, 1.5, centre=3, dtype=torch.float64)
    raw = torch.tensor([np.exp(-((i - 3) ** 2) / 4.5) for i in range(6)], dtype=torch.float64)
    assert torch.allclose(win, raw / raw.sum(), atol=1e-15)
    assert int(win.argmax()) == 3 and not torch.allclose(win, win.flip(0))


def test_paper_msssim_is_lower_than_the_standard_on_noisy_mnist():
    # method.md: on real MNIST pairs the paper's formula scores 0.06-0.13 lower than the standard one
    # (measured: Gaussian noise 0.3 on 500 zero-padded test digits, 0.722 vs 0.825; docs/evaluation.md).
    x = mnist_test_images(200)
    noisy = (x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    paper, standard = ms_ssim_paper(x, noisy), ms_ssim(x, noisy)
    assert (paper < standard).float().mean() > 0.95
    gap = (standard - paper).mean().item()
    assert 0.06 < gap < 0.14, gap
    assert 0.68 < paper.mean().item() < 0.77 and 0.79 < standard.mean().item() < 0.86
    other = ms_ssim_paper(x[:100], x[100:])  # different digits score far lower than a noisy copy
    assert other.mean() < 0.4 and (ms_ssim(x[:100], x[100:]) - other).mean() > 0.03


def test_paper_msssim_bad_shapes_raise():
    with pytest.raises(ValueError, match="ms_ssim_paper needs two"):
        ms_ssim_paper(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 16))
    with pytest.raises(ValueError, match="sides >= 16"):
        ms_ssim_paper(torch.zeros(1, 1, 8, 32), torch.zeros(1, 1, 8, 32))
