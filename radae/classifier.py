"""The two classifiers the evaluation trains: a feature network for FID, and the latent-code MLP.

- :class:`FeatureCNN`: a small CNN trained on a dataset's training split with its labels; its
  penultimate layer (128 features) is the offline feature space of ``fid_classifier`` (no
  Inception weights can be downloaded here). Trained once per dataset and cached by
  :mod:`radae.fid`.
- :class:`LatentMLP`: the paper's downstream classifier (method.md, "Evaluation"): a 2-layer MLP
  on latent codes z = E(x), hidden 256, trained 25 epochs with Adam lr 0.01, batch 100; the
  evaluation reports its clean test accuracy and its accuracy on E(x_a) under each attack.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


class FeatureCNN(nn.Module):
    """conv3x3(16)-ReLU-pool, conv3x3(32)-ReLU-pool, linear to ``feature_dim``-ReLU, linear to classes.

    Input (N, C, H, W) floats in [0, 1], H and W multiples of 4.
    """

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, feature_dim: int = 128) -> None:
        super().__init__()
        c, h, w = image_shape
        self.image_shape = tuple(image_shape)
        self.body = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * (h // 4) * (w // 4), feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N, feature_dim): the FID feature space."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class LatentMLP(nn.Module):
    """Linear(D, hidden)-ReLU-Linear(hidden, classes) on latent codes (N, D) -> logits (N, classes)."""

    def __init__(self, latent_dim: int, num_classes: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def fit(
    net: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> nn.Module:
    """Train ``net`` with Adam and cross-entropy on shuffled mini-batches; returns it in eval mode.

    ``inputs`` (N, ...) and ``labels`` (N,) on one device; ``transform`` maps a batch of inputs to
    what the network takes (e.g. uint8 images to floats). ``progress(epoch, epochs)`` after each epoch.
    """
    if len(inputs) != len(labels) or len(inputs) == 0:
        raise ValueError(
            f"classifier training needs matching non-empty inputs and labels, got {len(inputs)}, {len(labels)}"
        )
    # Batches of ~100 rows: intra-op threads only add synchronisation (measured 12x slower wall
    # with 2 threads on a loaded 2-core machine), so train single-threaded and restore after.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(net, inputs, labels, epochs, lr, batch_size, seed, transform, progress)
    finally:
        torch.set_num_threads(threads)


def _fit(net, inputs, labels, epochs, lr, batch_size, seed, transform, progress) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    try:  # the fused kernel is ~1.5x faster for these small nets (CPU and CUDA)
        opt = torch.optim.Adam(net.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(inputs), generator=gen).to(inputs.device)
        for begin in range(0, len(inputs), batch_size):
            idx = order[begin : begin + batch_size]
            xb = inputs[idx] if transform is None else transform(inputs[idx])
            loss = F.cross_entropy(net(xb), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if progress is not None:
            progress(epoch + 1, epochs)
    return net.eval()


@torch.no_grad()
def predict(net: nn.Module, inputs: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """Predicted class per row (N,), computed in batches."""
    net.eval()
    return torch.cat([net(inputs[i : i + batch_size]).argmax(dim=1) for i in range(0, len(inputs), batch_size)])


@torch.no_grad()
def encode_all(model, images: torch.Tensor, batch_size: int = 1000, device: torch.device | None = None) -> torch.Tensor:
    """Codes E(x) (N, D) of uint8 (N, C, H, W) images or floats in [0, 1], in batches, on ``device``."""
    out = []
    for i in range(0, len(images), batch_size):
        xb = images[i : i + batch_size].to(device)
        xb = xb.float() / 255.0 if xb.dtype == torch.uint8 else xb
        out.append(model.encode(xb))
    return torch.cat(out)


def train_latent_classifier(
    codes: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    epochs: int = 25,
    lr: float = 0.01,
    batch_size: int = 100,
    hidden: int = 256,
    seed: int = 0,
) -> LatentMLP:
    """The paper's downstream classifier trained on training codes (N, D) and labels (N,)."""
    with torch.random.fork_rng(devices=[]):  # seeded initial weights; the caller's global RNG is left alone
        torch.default_generator.manual_seed(seed)  # the nets are built on the CPU: only its generator
        net = LatentMLP(codes.shape[1], num_classes, hidden).to(codes.device)
    return fit(net, codes.detach(), labels, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)


def train_feature_net(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    epochs: int = 2,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> FeatureCNN:
    """A :class:`FeatureCNN` trained on uint8 images (N, C, H, W) and their labels."""
    with torch.random.fork_rng(devices=[]):  # seeded initial weights; the caller's global RNG is left alone
        torch.default_generator.manual_seed(seed)  # the nets are built on the CPU: only its generator
        net = FeatureCNN(tuple(images.shape[1:]), num_classes).to(images.device)
    return fit(
        net,
        images,
        labels,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        transform=lambda xb: xb.float() / 255.0,
        progress=progress,
    )
