"""Encoder and decoder networks by name (method.md, "Architectures and training"; paper A.4).

Every model builds its nets here, so a baseline and the robust autoencoder share the exact same
bodies for a dataset:

- ``mlp`` (MNIST, FashionMNIST at 32x32x1): encoder flatten, 1024-200-200-200-200-D with ReLU;
  decoder mirrored D-200-200-200-200-1024 with ReLU and a sigmoid output, reshaped to (C, H, W).
- ``conv`` (SVHN 32 px, CelebA 64 px): encoder 4 x [conv 4x4 stride 2 padding 1, BN, ReLU] with
  128, 256, 512, 1024 channels, then linear to D; decoder linear to 1024 x H/16 x W/16, transposed
  convs 1024->512->256->128 (4x4 stride 2 padding 1, BN, ReLU), and a last transposed conv to C
  channels with a sigmoid. H and W must be multiples of 16.

``encoder_out_dim`` lets a model ask for a wider encoder head (a VAE's mean and log-variance,
2D); the decoder always takes D.
"""

from __future__ import annotations

import math

from torch import nn

from radae.registry import Registry

NETWORKS: Registry = Registry("network")

MLP_HIDDEN = (200, 200, 200, 200)
CONV_CHANNELS = (128, 256, 512, 1024)


def _mlp(sizes: list[int]) -> list[nn.Module]:
    """Linear layers between consecutive ``sizes`` with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return layers


@NETWORKS.register("mlp")
def mlp_networks(
    image_shape: tuple[int, int, int], latent_dim: int, encoder_out_dim: int
) -> tuple[nn.Module, nn.Module]:
    """The MNIST/FashionMNIST MLP pair: (N, C, H, W) -> (N, encoder_out_dim) and (N, D) -> (N, C, H, W)."""
    pixels = math.prod(image_shape)
    encoder = nn.Sequential(nn.Flatten(), *_mlp([pixels, *MLP_HIDDEN, encoder_out_dim]))
    decoder = nn.Sequential(
        *_mlp([latent_dim, *reversed(MLP_HIDDEN), pixels]), nn.Sigmoid(), nn.Unflatten(1, tuple(image_shape))
    )
    return encoder, decoder


@NETWORKS.register("conv")
def conv_networks(
    image_shape: tuple[int, int, int], latent_dim: int, encoder_out_dim: int
) -> tuple[nn.Module, nn.Module]:
    """The SVHN/CelebA conv pair; spatial size halves four times, so H and W must be multiples of 16."""
    c, h, w = image_shape
    if h % 16 or w % 16:
        raise ValueError(f"conv networks need image height and width divisible by 16, got {h}x{w}")
    fh, fw = h // 16, w // 16
    enc: list[nn.Module] = []
    n_in = c
    for n_out in CONV_CHANNELS:
        enc += [nn.Conv2d(n_in, n_out, 4, stride=2, padding=1), nn.BatchNorm2d(n_out), nn.ReLU()]
        n_in = n_out
    encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(CONV_CHANNELS[-1] * fh * fw, encoder_out_dim))
    dec: list[nn.Module] = [
        nn.Linear(latent_dim, CONV_CHANNELS[-1] * fh * fw),
        nn.Unflatten(1, (CONV_CHANNELS[-1], fh, fw)),
    ]
    up = list(reversed(CONV_CHANNELS))  # 1024, 512, 256, 128
    for n_in, n_out in zip(up[:-1], up[1:], strict=True):
        dec += [nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1), nn.BatchNorm2d(n_out), nn.ReLU()]
    dec += [nn.ConvTranspose2d(up[-1], c, 4, stride=2, padding=1), nn.Sigmoid()]
    return encoder, nn.Sequential(*dec)


def build_networks(
    arch: str, image_shape: tuple[int, int, int], latent_dim: int, encoder_out_dim: int | None = None
) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) of the registered ``arch``; the encoder outputs ``encoder_out_dim`` (default D)."""
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
    return NETWORKS.get(arch)(
        image_shape=tuple(int(s) for s in image_shape),
        latent_dim=int(latent_dim),
        encoder_out_dim=int(encoder_out_dim or latent_dim),
    )
