"""Every registered model: shapes, output range and gradients in every parameter, for both archs."""

from __future__ import annotations

import pytest
import torch

from radae.config import ConfigError, RunConfig, apply_overrides
from radae.models import MODELS, NETWORKS, build_networks, create_model
from radae.models.rae import RobustGMMAE

# (dataset, image shape) per architecture: MNIST-like data uses the MLP, SVHN and CelebA the conv nets.
ARCH_CASES = [("mnist", (1, 32, 32)), ("svhn", (3, 32, 32)), ("celeba", (3, 64, 64))]


def small_config(model: str, dataset: str, **extra: object) -> RunConfig:
    """The dataset's paper config with a small latent space and cheap weight estimation."""
    overrides = {"model.name": model, "data.name": dataset, "loss.weight_batches": 2, "train.batch_size": 8}
    if dataset != "mnist":
        overrides.update({"model.latent_dim": 8, "prior.num_modes": 4})
    overrides.update(extra)
    return apply_overrides(RunConfig(), overrides)


@pytest.mark.parametrize("arch,shape", [("mlp", (1, 32, 32)), ("conv", (3, 32, 32)), ("conv", (3, 64, 64))])
def test_networks_shapes_and_range(arch: str, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    encoder, decoder = build_networks(arch, shape, latent_dim=6, encoder_out_dim=12)
    z = encoder(torch.rand(3, *shape))
    assert z.shape == (3, 12)
    images = decoder(50 * torch.randn(3, 6))  # far-out codes still decode into [0, 1]
    assert images.shape == (3, *shape)
    assert images.min() >= 0 and images.max() <= 1


def test_mlp_layer_sizes_follow_the_paper() -> None:
    encoder, decoder = build_networks("mlp", (1, 32, 32), latent_dim=10)
    enc = [(m.in_features, m.out_features) for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    dec = [(m.in_features, m.out_features) for m in decoder.modules() if isinstance(m, torch.nn.Linear)]
    assert enc == [(1024, 200), (200, 200), (200, 200), (200, 200), (200, 10)]
    assert dec == [(10, 200), (200, 200), (200, 200), (200, 200), (200, 1024)]


def test_conv_rejects_sizes_not_divisible_by_16() -> None:
    with pytest.raises(ValueError, match="divisible by 16"):
        build_networks("conv", (3, 28, 28), latent_dim=4)


def test_unknown_network_lists_known() -> None:
    with pytest.raises(KeyError, match="conv, mlp"):
        build_networks("resnet", (1, 32, 32), 4)
    assert set(NETWORKS.names()) >= {"mlp", "conv"}


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("dataset,shape", ARCH_CASES)
def test_every_model_shapes_range_and_gradients(name: str, dataset: str, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    cfg = small_config(name, dataset)
    try:
        model = create_model(cfg, shape)
    except ConfigError as err:
        # A model may support only some architectures (lipschitz-vae: MLP only); it must say so
        # by naming model.arch, and is then checked with the MLP at this image size.
        assert "model.arch" in str(err)
        cfg = small_config(name, dataset, **{"model.arch": "mlp"})
        model = create_model(cfg, shape)
    x = torch.rand(8, *shape)
    z = model.encode(x)
    assert z.shape == (8, cfg.model.latent_dim)
    rec = model.reconstruct(x)
    assert rec.shape == x.shape and rec.min() >= 0 and rec.max() <= 1
    samples = model.sample(5, torch.Generator().manual_seed(1))
    assert samples.shape == (5, *shape) and samples.min() >= 0 and samples.max() <= 1

    out = model.loss(x, torch.Generator().manual_seed(2))
    assert out.total.ndim == 0 and torch.isfinite(out.total)
    out.total.backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None, f"{name}: {pname} received no gradient"
        assert torch.isfinite(param.grad).all(), f"{name}: {pname} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name}: {pname} gradient is zero everywhere"


def test_rae_total_is_the_weighted_sum_of_its_parts() -> None:
    cfg = small_config("rae", "mnist")
    model = create_model(cfg, (1, 32, 32))
    out = model.loss(torch.rand(8, 1, 32, 32), torch.Generator().manual_seed(0))
    expected = (
        model.rec_weight * out.parts["rec"] + model.ks_weight * out.parts["ks"] + model.cov_weight * out.parts["cov"]
    )
    torch.testing.assert_close(out.total, expected)
    assert out.parts["latent_shift"] > 0  # FGSM moved the codes


def test_rae_weights_follow_eq10_and_multipliers() -> None:
    base = create_model(small_config("rae", "mnist"), (1, 32, 32))
    scaled = create_model(
        small_config("rae", "mnist", **{"loss.ks_mult": 2.0, "loss.cov_mult": 3.0, "loss.rec_mult": 0.5}), (1, 32, 32)
    )
    torch.testing.assert_close(scaled.ks_weight, 2 * base.ks_weight)
    torch.testing.assert_close(scaled.cov_weight, 3 * base.cov_weight)
    torch.testing.assert_close(scaled.rec_weight, 0.5 * base.rec_weight)
    fixed = create_model(small_config("rae", "mnist", **{"loss.ks_weight": 7.0, "loss.cov_weight": 0.25}), (1, 32, 32))
    assert float(fixed.ks_weight) == 7.0 and float(fixed.cov_weight) == 0.25


def test_rae_buffers_carry_prior_and_weights_through_state_dict() -> None:
    cfg = small_config("rae", "mnist", **{"prior.num_modes": 3})
    model = create_model(cfg, (1, 32, 32))
    state = model.state_dict()
    for key in ("prior_means", "rec_weight", "ks_weight", "cov_weight"):
        assert key in state
    torch.testing.assert_close(state["prior_means"], 10.0 * torch.eye(10)[:3])
    other = create_model(small_config("rae", "mnist", **{"prior.num_modes": 3, "loss.ks_weight": 1.0}), (1, 32, 32))
    other.load_state_dict(state)
    assert float(other.ks_weight) == float(model.ks_weight)


def test_rae_without_adversarial_training_is_the_gmm_dae() -> None:
    model = create_model(small_config("rae", "mnist", **{"adv.method": "none"}), (1, 32, 32))
    out = model.loss(torch.rand(8, 1, 32, 32), torch.Generator().manual_seed(0))
    assert float(out.parts["latent_shift"]) == 0.0
    assert torch.isfinite(out.total)


def test_unimodal_variant_samples_the_standard_normal() -> None:
    model = create_model(small_config("rae", "mnist", **{"prior.num_modes": 1}), (1, 32, 32))
    assert isinstance(model, RobustGMMAE)
    z = model.sample_latent(20000, torch.Generator().manual_seed(0))
    assert z.mean().abs() < 0.02 and (z.std() - 1).abs() < 0.02
    model.loss(torch.rand(8, 1, 32, 32), torch.Generator().manual_seed(0)).total.backward()


def test_unknown_model_lists_registered() -> None:
    cfg = apply_overrides(RunConfig(), {"model.name": "nope"})
    with pytest.raises(KeyError, match="rae"):
        create_model(cfg, (1, 32, 32))
