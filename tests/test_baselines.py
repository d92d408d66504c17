"""The six baselines: interface, objectives against closed forms, Lipschitz guarantees, real-MNIST training,
checkpoint and evaluation round trips."""

from __future__ import annotations

import math
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from radae.checkpoint import load_model, save_checkpoint
from radae.config import ConfigError, RunConfig, apply_overrides
from radae.divergences import gaussian_kl
from radae.models import MODELS, create_model
from radae.models.baselines import BASELINES, LIKELIHOODS
from radae.models.baselines.lipschitz import BjorckLinear, GroupSort, lipschitz_mlp, spectral_upper_bound
from radae.models.baselines.tcvae import training_set_size

SHAPE = (1, 32, 32)
# Fewer Bjorck iterations keep the Lipschitz-VAE fast in tests; the bound holds for any count.
FAST = {"baseline.bjorck_iters": 3}


pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(name: str, **overrides) -> RunConfig:
    return apply_overrides(RunConfig(), {"data.name": "mnist", "model.name": name, **FAST, **overrides})


def _model(name: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return create_model(_cfg(name, **overrides), SHAPE)


def _images(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, *SHAPE), generator=torch.Generator().manual_seed(seed))


def _spectral_norm(w: torch.Tensor, iters: int = 500) -> float:
    """Largest singular value by power iteration (independent of torch.linalg)."""
    v = torch.randn(w.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = w.detach().double()
    for _ in range(iters):
        v = w.T @ (w @ v)
        v = v / v.norm()
    return (w @ v).norm().item()


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_implements_the_interface(name):
    model = _model(name)
    x = _images()
    assert name in MODELS
    mu, _ = model.posterior(x)
    torch.testing.assert_close(model.encode(x), mu)  # attacks act on the posterior mean
    torch.testing.assert_close(model.encode(x), model.encode(x))  # deterministic
    rec = model.reconstruct(x)
    assert rec.shape == x.shape and rec.min() >= 0 and rec.max() <= 1
    z = model.sample_latent(4000, torch.Generator().manual_seed(1))
    assert z.shape == (4000, 10)
    assert z.mean().abs() < 0.05 and (z.std() - 1).abs() < 0.05  # N(0, I) prior
    assert model.sample(3).shape == (3, *SHAPE)
    out = model.loss(x, torch.Generator().manual_seed(2))
    assert out.total.dim() == 0 and torch.isfinite(out.total)
    out.total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"{name}: parameters without finite gradients: {missing}"


def test_likelihoods_match_torch_distributions():
    x, x_hat = _images(4, 1), _images(4, 2).clamp(0.01, 0.99)
    binary = (x > 0.5).float()
    expected = -Bernoulli(probs=x_hat).log_prob(binary).flatten(1).sum(1)
    torch.testing.assert_close(LIKELIHOODS.get("bernoulli")(x_hat, binary, 1.0), expected)
    expected = -Normal(x_hat, 0.3).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(LIKELIHOODS.get("gaussian")(x_hat, x, 0.3), expected)


@pytest.mark.parametrize(("name", "beta"), [("vae", 1.0), ("beta-vae", 4.0)])
def test_vae_objectives_weight_the_closed_form_kl(name, beta):
    model = _model(name, **{"baseline.likelihood": "gaussian"})
    x = _images()
    out = model.loss(x, torch.Generator().manual_seed(3))
    mu, logvar = model.posterior(x)
    torch.testing.assert_close(out.parts["kl"], gaussian_kl(mu, logvar).mean())
    torch.testing.assert_close(out.total, out.parts["rec"] + beta * out.parts["kl"])


def test_beta_tcvae_weights_its_decomposition_and_derives_n():
    model = _model("beta-tcvae", **{"baseline.tc_alpha": 2.0, "baseline.tc_beta": 6.0, "baseline.tc_gamma": 0.5})
    out = model.loss(_images(32), torch.Generator().manual_seed(4))
    p = out.parts
    torch.testing.assert_close(out.total, p["rec"] + 2.0 * p["mi"] + 6.0 * p["tc"] + 0.5 * p["dwkl"])
    assert training_set_size(_cfg("beta-tcvae")) == 50000  # MNIST 60,000 minus 10,000 validation
    assert training_set_size(_cfg("beta-tcvae", **{"data.train_limit": 1000})) == 1000
    assert training_set_size(_cfg("beta-tcvae", **{"baseline.dataset_size": 777})) == 777
    assert model.dataset_size == 50000


def test_spectral_upper_bound_brackets_the_spectral_norm():
    g = torch.Generator().manual_seed(5)
    for shape in [(200, 1024), (1024, 200), (20, 200), (7, 3)]:
        w = torch.randn(shape, generator=g) * torch.linspace(0.1, 3.0, shape[1])
        sigma = _spectral_norm(w)
        bound = spectral_upper_bound(w).item()
        assert sigma <= bound * (1 + 1e-5) <= sigma * min(shape) ** (1 / 32) * (1 + 1e-4)


def test_bjorck_layer_stays_within_its_constant_after_training():
    torch.manual_seed(0)
    layer = BjorckLinear(64, 32, lipschitz=2.0, iters=5)
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    x = torch.randn(256, 64)
    target = 10.0 * x[:, :32]  # wants gain 10, far above the allowed 2
    for _ in range(30):
        opt.zero_grad()
        (layer(x) - target).pow(2).mean().backward()
        opt.step()
    sigma = _spectral_norm(layer.ortho_weight())
    assert sigma <= 2.0 * (1 + 1e-4)
    assert sigma > 1.9  # and it uses the budget it is given (near-orthonormal)


def test_groupsort_is_norm_preserving_and_one_lipschitz():
    a, b = torch.randn(50, 8), torch.randn(50, 8)
    gs = GroupSort()
    torch.testing.assert_close(gs(a).norm(dim=1), a.norm(dim=1))
    assert ((gs(a) - gs(b)).norm(dim=1) <= (a - b).norm(dim=1) + 1e-6).all()


def test_lipschitz_network_bound_holds_under_gradient_ascent():
    torch.manual_seed(1)
    net = lipschitz_mlp([16, 32, 32, 4], lipschitz=3.0, iters=5)
    x = torch.randn(64, 16)
    delta = (0.1 * torch.randn(64, 16)).requires_grad_(True)
    opt = torch.optim.Adam([delta], lr=0.05)
    for _ in range(50):  # search for the steepest direction the net has
        ratio = (net(x + delta) - net(x)).norm(dim=1) / delta.norm(dim=1)
        opt.zero_grad()
        (-ratio.sum()).backward()
        opt.step()
    assert ratio.max().item() <= 3.0 * (1 + 1e-4)


def test_lipschitz_vae_certified_bounds_hold_and_conv_is_refused():
    model = _model("lipschitz-vae")
    bounds = model.certified_bounds(radius=1.0)
    assert bounds == {"latent_l2_bound": 5.0, "reconstruction_l2_bound": 5.0 * 40.0 / 4.0}
    x = _images(8)
    delta = torch.randn_like(x)
    delta = delta / delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)  # ||delta||_2 = 1
    with torch.no_grad():
        latent = (model.encode(x + delta) - model.encode(x)).norm(dim=1)
        recon = (model.reconstruct(x + delta) - model.reconstruct(x)).flatten(1).norm(dim=1)
    assert (latent <= bounds["latent_l2_bound"]).all() and (recon <= bounds["reconstruction_l2_bound"]).all()
    with pytest.raises(ConfigError, match="model.arch"):
        create_model(apply_overrides(RunConfig(), {"data.name": "svhn", "model.name": "lipschitz-vae"}), (3, 32, 32))


def test_smooth_encoder_term_vanishes_without_perturbation_and_grows_with_one():
    model = _model("se", **{"baseline.se_perturbation": "random", "adv.eps": 0.0})
    out = model.loss(_images(), torch.Generator().manual_seed(6))
    assert abs(out.parts["sinkhorn"].item()) < 1e-5  # identical posteriors, common noise: exactly 0
    torch.testing.assert_close(out.parts["kl_perturbed"], out.parts["kl"])
    adversarial = _model("se").loss(_images(), torch.Generator().manual_seed(6))
    assert adversarial.parts["sinkhorn"].item() > 1e-4 and adversarial.parts["latent_shift"].item() > 0
    p = adversarial.parts
    torch.testing.assert_close(adversarial.total, p["rec"] + p["kl"] + p["kl_perturbed"] + p["sinkhorn"])


def test_avae_consistency_term_is_the_coupled_kl():
    model = _model("avae", **{"baseline.rho": 0.9, "baseline.avae_weight": 2.0})
    x = _images()
    g = torch.Generator().manual_seed(7)
    out = model.loss(x, g)
    # replay the same draws: z from the posterior, then re-encode G(z)
    mu, logvar = model.posterior(x)
    z = model.rsample(mu, logvar, torch.Generator().manual_seed(7))
    mu_t, lv_t = model.posterior(model.decode(z))
    coupled = Normal(0.9 * z, math.sqrt(1 - 0.81))
    expected = torch.distributions.kl_divergence(Normal(mu_t, (0.5 * lv_t).exp()), coupled).sum(1).mean()
    torch.testing.assert_close(out.parts["consistency"], expected)
    torch.testing.assert_close(out.total, out.parts["rec"] + out.parts["kl"] + 2.0 * expected)
    with pytest.raises(ConfigError, match="baseline.rho"):
        _cfg("avae", **{"baseline.rho": 1.0})


@pytest.mark.parametrize("name", BASELINES)
def test_checkpoint_round_trip(name, tmp_path):
    cfg = _cfg(name)
    torch.manual_seed(3)
    model = create_model(cfg, SHAPE)
    path = save_checkpoint(
        tmp_path / "checkpoint.pt", {"config": cfg.to_dict(), "image_shape": SHAPE, "model": model.state_dict()}
    )
    cfg2, loaded = load_model(path)
    assert cfg2 == cfg and type(loaded) is type(model)
    x = _images(4)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x))
        g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        torch.testing.assert_close(loaded.loss(x, g1).total, model.loss(x, g2).total)


@pytest.fixture(scope="module")
def mnist():
    from radae.data import DataError, load_dataset

    try:
        return load_dataset(_cfg("vae", **{"data.train_limit": 1000, "data.download": False}).data)
    except DataError as err:
        pytest.skip(f"real MNIST not available: {err}")


@pytest.mark.slow
@pytest.mark.parametrize("name", BASELINES)
def test_loss_falls_on_real_mnist(name, mnist):
    model = _model(name)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    x = mnist.train.get(torch.arange(100))
    losses = []
    for _ in range(12):
        out = model.loss(x, g)
        opt.zero_grad()
        out.total.backward()
        opt.step()
        losses.append(out.total.item())
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses


SWEEP_SCRIPT = Path(__file__).parents[1] / "sweeps" / "baselines.py"


def test_sweep_table_lays_out_models_by_levels():
    format_table = runpy.run_path(str(SWEEP_SCRIPT))["format_table"]

    from radae.objective import LATENT_KEY, MAXDAMAGE_KEY

    metrics = {f"metric.{LATENT_KEY.format(level=t)}": 0.1 * t for t in (1, 3, 5)}
    metrics |= {f"metric.{MAXDAMAGE_KEY.format(level=t)}": 1 - 0.1 * t for t in (1, 3, 5)}
    rows = [
        {
            "trial_id": "vae",
            "status": "completed",
            "config.data.name": "mnist",
            **metrics,
            "metric.fid_classifier_mean": 12.5,
        },
        {"trial_id": "se", "status": "error", "error": "RuntimeError: boom"},
    ]
    lines = format_table(rows, (1.0, 3.0, 5.0)).splitlines()
    assert "l=1/3/5" in lines[0] and "fid_classifier_mean" in lines[0]
    assert lines[2].split("|")[1].split() == ["0.10", "/", "0.30", "/", "0.50"]
    assert lines[2].split("|")[2].split() == ["0.90", "/", "0.70", "/", "0.50"]
    assert lines[2].split("|")[3].strip() == "12.50"
    assert "0.55 / 0.78 / 0.89" in lines[3] and "(paper)" in lines[3]  # the paper's VAE row beside ours
    assert lines[4].startswith("se") and "boom" in lines[4]


def test_sweep_table_has_the_paper_row_of_every_model():
    """Every model of the grid has its row of the appendix's table 1 (radae.analysis.paper) beside it."""
    paper_rows = runpy.run_path(str(SWEEP_SCRIPT))["PAPER_MNIST"]
    assert set(paper_rows) == {"rae", *BASELINES}
    assert paper_rows["se"].fid == 47.34 and paper_rows["rae"].max_damage == (0.92, 0.82, 0.69)


@pytest.mark.slow
def test_baselines_sweep_smoke_mode(tmp_path, mnist):
    import pyarrow.parquet as pq

    cmd = [sys.executable, str(SWEEP_SCRIPT), "--smoke-test", "--out", str(tmp_path), "--sweep-id", "smoke"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = done.stdout[done.stdout.index("model ") :]
    assert all(name in table for name in ["rae", *BASELINES]) and "(paper)" in table
    files = sorted((tmp_path / "results" / "sweep=smoke").glob("trial=*.parquet"))
    assert [f.stem for f in files] == [f"trial={m}" for m in sorted(["rae", *BASELINES])]
    for f in files:
        row = pq.read_table(f).to_pylist()[0]
        assert row["status"] == "completed" and row["config.model.name"] == row["trial_id"]
        assert row["param.model.name"] == row["trial_id"] and row["config.train.epochs"] == 1
        assert Path(row["config.data.data_dir"]).is_dir() and row["smoke_test"]  # the folder read; a smoke run
        assert 0.0 <= row["metric.latent_msssim_xt_recxa_l3_mean"] <= 1.0
        assert math.isfinite(row["metric.fid"]) and math.isfinite(row["metric.robustness"])
        if row["trial_id"] == "lipschitz-vae":
            assert row["metric.certified_maxdmg_l2_recx_recxa_l1"] == pytest.approx(5.0 * 40.0 / 4.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", BASELINES)
def test_evaluation_round_trip(name, mnist, tmp_path):
    from radae.config import EvalConfig
    from radae.evaluate import evaluate

    cfg = _cfg(name)
    torch.manual_seed(0)
    path = save_checkpoint(
        tmp_path / "c.pt",
        {"config": cfg.to_dict(), "image_shape": SHAPE, "model": create_model(cfg, SHAPE).state_dict()},
    )
    _, model = load_model(path)
    tiny = EvalConfig(images=2, trials=1, attack_steps=3, fid=False, classifier_epochs=0)
    result = evaluate(model, mnist, tiny, device="cpu", progress=False)
    for level in ("l1", "l3", "l5"):
        for key in (f"latent_msssim_xt_recxa_{level}_mean", f"max_damage_msssim_recx_recxa_{level}_mean"):
            assert 0.0 <= result.metrics[key] <= 1.0 + 1e-4, key  # float32 MS-SSIM of near-identical images
        # the attack respects its L2 budget on the posterior-mean code's input
        assert result.metrics[f"latent_l2_x_xa_{level}_mean"] <= float(level[1:]) + 1e-4
