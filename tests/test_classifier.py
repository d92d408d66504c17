"""Downstream latent MLP and the FID feature network (radae.classifier)."""

from __future__ import annotations

import pytest
import torch

from radae.classifier import FeatureCNN, LatentMLP, encode_all, predict, train_feature_net, train_latent_classifier
from radae.config import DataConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def test_latent_mlp_shape_and_paper_settings():
    net = LatentMLP(10, 10)
    assert net(torch.zeros(5, 10)).shape == (5, 10)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 256), (256, 10)]


def test_latent_classifier_learns_gmm_like_codes():
    # Codes around 10 one-hot means at distance 10 (the prior's layout): nearly separable.
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(10, (3000,), generator=g)
    codes = 10 * torch.eye(10)[labels] + torch.randn(3000, 10, generator=g)
    net = train_latent_classifier(codes[:2000], labels[:2000], 10, epochs=3)
    acc = (predict(net, codes[2000:]) == labels[2000:]).float().mean()
    assert acc > 0.95, acc


def test_latent_classifier_is_at_chance_on_random_labels():
    g = torch.Generator().manual_seed(1)
    codes, labels = torch.randn(2000, 10, generator=g), torch.randint(10, (2000,), generator=g)
    net = train_latent_classifier(codes[:1000], labels[:1000], 10, epochs=3)
    assert (predict(net, codes[1000:]) == labels[1000:]).float().mean() < 0.2


def test_encode_all_matches_one_batch():
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))

    class M:
        def encode(self, x):
            return enc(x)

    images = torch.randint(0, 256, (25, 1, 4, 4), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(encode_all(M(), images, batch_size=7), enc(images.float() / 255))


@pytest.mark.slow
def test_feature_net_classifies_real_mnist():
    from radae.data import DataError, load_dataset

    try:
        data = load_dataset(DataConfig(name="mnist", data_dir="/work/shared/data/mnist", download=False))
    except DataError as err:
        pytest.skip(f"real MNIST not available: {err}")
    net = train_feature_net(data.train.images[:6000], data.train.labels[:6000], 10, epochs=2, lr=3e-3)
    assert isinstance(net, FeatureCNN)
    x = data.test.images[:2000].float() / 255
    acc = (predict(net, x) == data.test.labels[:2000]).float().mean()
    assert acc > 0.9, acc
    assert net.features(x[:3]).shape == (3, 128)


def test_training_a_classifier_leaves_the_callers_global_rng_alone():
    """The evaluation runs inside training processes (sweep trials): seeding the classifiers must
    not reseed torch's global generator under the caller."""
    codes, labels = torch.randn(40, 3), torch.arange(40) % 2
    images = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8)
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    train_latent_classifier(codes, labels, 2, epochs=1, seed=7)
    train_feature_net(images, torch.arange(16) % 2, 2, epochs=1, seed=7)
    assert torch.equal(torch.rand(3), expected)
