"""Adversarial-training perturbations: constraints, objective ascent, PGD vs FGSM, reproducibility."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from radae.config import AdvConfig
from radae.models import build_networks
from radae.perturb import PERTURBATIONS, SignedSteps, frozen, perturb, random_start, schedule, signed_ascent

SHAPE = (1, 8, 8)


def encoder_and_batch(arch: str = "mlp", shape: tuple[int, int, int] = SHAPE) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    encoder, _ = build_networks(arch, shape, latent_dim=6)
    return encoder, torch.rand(64, *shape, generator=torch.Generator().manual_seed(1))


def deviation(encoder: torch.nn.Module, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """Per-sample ||E(x_adv) - E(x)||^2."""
    with torch.no_grad():
        return (encoder(x_adv) - encoder(x)).pow(2).sum(dim=1)


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_stays_in_eps_ball_and_pixel_box(method: str) -> None:
    encoder, x = encoder_and_batch()
    cfg = AdvConfig(method=method, eps=0.3, step_size=0.375, pgd_steps=4)
    x_adv = perturb(encoder, x, cfg, torch.Generator().manual_seed(0))
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= 0.3 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > 0.25  # it actually moved to the ball's edge somewhere


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_increases_latent_deviation_over_the_random_start(method: str) -> None:
    encoder, x = encoder_and_batch()
    cfg = AdvConfig(method=method, eps=0.1, step_size=0.1, pgd_steps=5)
    start = random_start(
        x, torch.rand(x.shape, generator=torch.Generator().manual_seed(3)), cfg.eps
    )  # the attack's draw
    x_adv = perturb(encoder, x, cfg, torch.Generator().manual_seed(3))
    assert deviation(encoder, x, x_adv).mean() > 2 * deviation(encoder, x, start).mean()


def test_pgd_at_least_as_strong_as_fgsm_on_average() -> None:
    encoder, x = encoder_and_batch()
    fgsm_cfg = AdvConfig(method="fgsm", eps=0.1, step_size=0.125)
    pgd_cfg = dataclasses.replace(fgsm_cfg, method="pgd", pgd_steps=10)
    fgsm_dev = torch.stack(
        [deviation(encoder, x, perturb(encoder, x, fgsm_cfg, torch.Generator().manual_seed(s))) for s in range(5)]
    )
    pgd_dev = torch.stack(
        [deviation(encoder, x, perturb(encoder, x, pgd_cfg, torch.Generator().manual_seed(s))) for s in range(5)]
    )
    assert pgd_dev.mean() >= fgsm_dev.mean()


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_reproducible_with_a_seeded_generator(method: str) -> None:
    encoder, x = encoder_and_batch()
    cfg = AdvConfig(method=method)
    a = perturb(encoder, x, cfg, torch.Generator().manual_seed(7))
    b = perturb(encoder, x, cfg, torch.Generator().manual_seed(7))
    c = perturb(encoder, x, cfg, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_leaves_encoder_gradients_and_batchnorm_statistics_untouched() -> None:
    encoder, x = encoder_and_batch("conv", (3, 16, 16))
    encoder.train()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    perturb(
        encoder,
        x[:8].expand(8, 3, 16, 16).contiguous(),
        AdvConfig(method="pgd", pgd_steps=2),
        torch.Generator().manual_seed(0),
    )
    assert all(p.grad is None for p in encoder.parameters())
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, before[key]), f"{key} changed during the attack"


def test_none_returns_the_clean_batch_and_registry_lists_methods() -> None:
    encoder, x = encoder_and_batch()
    assert torch.equal(perturb(encoder, x, AdvConfig(method="none")), x)
    assert PERTURBATIONS.names() == ["fgsm", "none", "pgd"]
    with pytest.raises(KeyError, match="fgsm, none, pgd"):
        perturb(encoder, x, AdvConfig(method="cw"))


def test_pgd_step_default_and_schedules() -> None:
    """The step schedule of each method: FGSM one step of a, PGD its steps at 2.5 eps / steps by default."""
    assert schedule(AdvConfig(method="fgsm", step_size=0.375)) == SignedSteps(1, 0.375)
    assert schedule(AdvConfig(method="pgd", eps=0.3, pgd_steps=5)) == SignedSteps(5, pytest.approx(0.15))
    assert schedule(AdvConfig(method="pgd", pgd_steps=4, pgd_step_size=0.01)) == SignedSteps(4, 0.01)
    assert schedule(AdvConfig(method="none")) is None


def test_vmapped_ascent_equals_each_perturbation_alone() -> None:
    """signed_ascent under torch.func.vmap, with one eps and step size per member (as the packed trainer
    runs it), gives each member exactly what perturb gives that member's config alone."""
    encoder, x = encoder_and_batch()
    x = x.double()
    encoder = encoder.double()
    cfgs = [
        AdvConfig(method="pgd", eps=e, pgd_steps=3, pgd_step_size=s) for e, s in ((0.1, 0.05), (0.3, 0.2), (0.05, 0.1))
    ]
    u = torch.rand(len(cfgs), *x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    eps = torch.tensor([c.eps for c in cfgs], dtype=torch.float64)
    step = torch.tensor([c.pgd_step_size for c in cfgs], dtype=torch.float64)
    encode = frozen(encoder)
    packed = torch.func.vmap(lambda um, em, sm: signed_ascent(encode, x, um, em, sm, 3))(u, eps, step)
    for m, cfg in enumerate(cfgs):
        alone = perturb(encoder, x, cfg, u=u[m])
        torch.testing.assert_close(packed[m], alone, rtol=1e-12, atol=1e-12)
        assert (alone - x).abs().max() <= cfg.eps + 1e-12
