"""radae.fast: the functional eq. 9 equals the model's loss, packed (vmap) training equals each
member trained alone, the stacked Adam equals torch.optim.Adam, and the CUDA-graph step equals
the eager step (GPU only).

Tolerances: in float64 the packed and single paths differ only by float reassociation, so
parameters agree to 1e-9 after several steps. In float32 FGSM's sign() and Adam's early
normalised steps amplify last-bit differences, so multi-step float32 comparisons use 1e-3.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch

from radae.checkpoint import load_checkpoint, load_model
from radae.config import ConfigError, RunConfig, apply_overrides
from radae.fast import PackConfig, PackedGraph, PackedModels, check_packable, train_packed
from radae.fast.adam import StackedAdam
from radae.fast.functional import member_loss
from radae.fast.packed import hyper_of, structure_of
from radae.models import create_model
from radae.models.rae import draw_noise
from radae.trainer import train
from radae.trainsteps import eager_step, make_optimizer, make_train_step

SHAPE = (1, 32, 32)
MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def cfg_of(**over) -> RunConfig:
    base = {"data.name": "mnist", "loss.weight_batches": 4, "train.device": "cpu"}
    return apply_overrides(RunConfig(), {**base, **over})


def build(cfg: RunConfig, dtype=torch.float64):
    torch.manual_seed(cfg.train.seed)
    return create_model(cfg, SHAPE).to(dtype)


MEMBERS = [  # differ in alpha, K (padded to 10), eps, latent noise, lr and seed
    {"loss.alpha": 0.95, "prior.num_modes": 10, "train.seed": 0, "train.out_dir": "m0"},
    {
        "loss.alpha": 0.5,
        "prior.num_modes": 4,
        "adv.eps": 0.2,
        "train.seed": 1,
        "train.lr": 0.001,
        "train.out_dir": "m1",
    },
    {"loss.alpha": 0.9, "prior.num_modes": 1, "loss.latent_noise": 0.0, "train.seed": 2, "train.out_dir": "m2"},
]
# Packs also mix the eq. 10 KS weighting and the mode placement (per-member tensors, not structure).
WEIGHTING_MEMBER = {
    "loss.ks_weighting": "separate",
    "prior.placement": "sobol-doubling",
    "train.seed": 3,
    "train.out_dir": "m3",
}


@pytest.mark.parametrize(
    "over",
    [
        {},
        {"adv.method": "pgd", "adv.pgd_steps": 3},
        {"adv.method": "none"},
        {"loss.adv_rec": True},
        {"loss.ks_weighting": "separate"},
    ],
)
def test_member_loss_equals_model_loss(over):
    """Same generator, same numbers: the functional eq. 9 is RobustGMMAE.loss (float64, 1e-12)."""
    cfg = cfg_of(**over)
    model = build(cfg)
    x = torch.rand(16, *SHAPE, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = model.loss(x, torch.Generator().manual_seed(7))
    st = structure_of(cfg)
    noise = draw_noise(
        torch.Generator().manual_seed(7), x.shape, 10, st.adversarial, st.adv_rec, model.latent_noise, "cpu", x.dtype
    )
    params = dict(model.named_parameters())
    total, parts = member_loss(model, st, params, hyper_of(model, model.prior_means.shape[0]), x, noise)
    assert total.item() == pytest.approx(expected.total.item(), rel=1e-12)
    for name, value in expected.parts.items():
        assert parts[name].item() == pytest.approx(value.item(), rel=1e-12, abs=1e-15), name


def test_packed_steps_equal_each_member_alone():
    """Members with different alpha, K, eps, noise, lr, KS weighting and placement: vmap == eager training of each."""
    cfgs = [cfg_of(**m) for m in [*MEMBERS, WEIGHTING_MEMBER]]
    models = [build(c) for c in cfgs]
    assert models[3].ks_coefs != models[0].ks_coefs  # the separate weighting really differs
    singles = [copy.deepcopy(m) for m in models]
    steps = [eager_step(m, torch.optim.Adam(m.parameters(), lr=c.train.lr)) for m, c in zip(singles, cfgs, strict=True)]
    pm = PackedModels(models, cfgs, [c.train.lr for c in cfgs], PackConfig(noise="member"))
    gens = [torch.Generator().manual_seed(c.train.seed + 1) for c in cfgs]
    gens_single = [torch.Generator().manual_seed(c.train.seed + 1) for c in cfgs]
    data = torch.rand(3, len(cfgs), 16, *SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for t in range(3):
        packed = pm.step(data[t], pm.draw(gens, 16))
        for m, (step, gen) in enumerate(zip(steps, gens_single, strict=True)):
            alone = step(data[t, m], gen)
            for key in ("loss", "rec", "ks", "cov"):
                assert packed[key][m].item() == pytest.approx(alone[key].item(), rel=1e-9), (t, m, key)
    for m, model in enumerate(singles):
        for name, p in model.named_parameters():
            torch.testing.assert_close(pm.params[name][m], p.detach(), rtol=1e-9, atol=1e-10)


def test_stacked_adam_is_torch_adam_and_its_state_resumes():
    gen = torch.Generator().manual_seed(0)
    params = {
        "w": torch.randn(2, 5, 3, generator=gen, dtype=torch.float64),
        "b": torch.randn(2, 3, generator=gen, dtype=torch.float64),
    }
    lrs = [0.01, 0.003]
    singles = [[params["w"][m].clone().requires_grad_(), params["b"][m].clone().requires_grad_()] for m in range(2)]
    opts = [torch.optim.Adam(s, lr=lr) for s, lr in zip(singles, lrs, strict=True)]
    adam = StackedAdam.create(params, torch.tensor(lrs, dtype=torch.float64))
    for _ in range(6):
        grads = {
            "w": torch.randn(2, 5, 3, generator=gen, dtype=torch.float64),
            "b": torch.randn(2, 3, generator=gen, dtype=torch.float64),
        }
        adam.update(params, grads)
        for m in range(2):
            singles[m][0].grad, singles[m][1].grad = grads["w"][m].clone(), grads["b"][m].clone()
            opts[m].step()
    for m in range(2):
        torch.testing.assert_close(params["w"][m], singles[m][0].detach(), rtol=1e-12, atol=1e-14)
        # the exported state continues in torch.optim.Adam exactly like the original optimizer
        fresh = [singles[m][0].detach().clone().requires_grad_(), singles[m][1].detach().clone().requires_grad_()]
        resumed = torch.optim.Adam(fresh, lr=lrs[m])
        resumed.load_state_dict(adam.member_state_dict(m, ["w", "b"]))
        g = [torch.ones(5, 3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)]
        for opt, ps in ((resumed, fresh), (opts[m], singles[m])):
            ps[0].grad, ps[1].grad = g[0].clone(), g[1].clone()
            opt.step()
        torch.testing.assert_close(fresh[0], singles[m][0], rtol=1e-12, atol=1e-14)


def test_pack_rules_name_the_field():
    a, b = cfg_of(**{"train.out_dir": "a"}), cfg_of(**{"train.out_dir": "b"})
    check_packable([a, b])
    with pytest.raises(ConfigError, match="model.latent_dim"):
        check_packable([a, cfg_of(**{"train.out_dir": "c", "model.latent_dim": 12})])
    with pytest.raises(ConfigError, match="train.out_dir"):
        check_packable([a, cfg_of(**{"train.out_dir": "a", "loss.alpha": 0.5})])
    with pytest.raises(ConfigError, match="adv.pgd_steps"):
        check_packable(
            [cfg_of(**{"adv.method": "pgd", "train.out_dir": "p"}), cfg_of(**{"adv.method": "pgd", "adv.pgd_steps": 2})]
        )
    with pytest.raises(ConfigError, match="^prior.placement 'bogus' is unknown; known: "):  # members may differ there
        check_packable([a, cfg_of(**{"train.out_dir": "c", "prior.placement": "bogus"})])
    with pytest.raises(ConfigError, match="pack.size"):
        PackConfig(size=0)


def test_step_mode_resolution_on_cpu():
    model = build(cfg_of(), torch.float32)
    opt = torch.optim.Adam(model.parameters())
    eager = make_train_step(model, opt, cfg_of(**{"train.step_mode": "auto"}), "cpu")
    out = eager(torch.rand(8, *SHAPE), torch.Generator().manual_seed(0))
    assert set(out) == {"loss", "rec", "ks", "cov", "latent_shift"} and math.isfinite(out["loss"].item())
    with pytest.raises(ConfigError, match="train.step_mode graph needs a CUDA device"):
        make_train_step(model, opt, cfg_of(**{"train.step_mode": "graph"}), "cpu")


@pytest.fixture(scope="module")
def mnist_small():
    if not (MNIST / "train-images-idx3-ubyte.gz").exists() and not (MNIST / "train-images-idx3-ubyte").exists():
        pytest.skip(f"real MNIST not found in {MNIST}")
    from radae.data import Split, Splits, load_dataset

    data = load_dataset(cfg_of(**{"data.data_dir": str(MNIST), "data.train_limit": 400, "data.val_size": 200}).data)
    test = Split(data.test.images[:200], data.test.labels[:200])
    return Splits(data.train, data.val, test, data.info, data.source)


@pytest.mark.slow
def test_train_packed_equals_train_and_keeps_trials_separate(mnist_small, tmp_path):
    """Real MNIST: each member's history equals train(cfg)'s; files, checkpoints and resume are per trial;
    the pack resumes, and a member's checkpoint resumes in the single-trial trainer.

    A member with lr = 1e30 overflows to a non-finite loss on its second step; the other members are unaffected.
    """
    run = {
        "data.data_dir": str(MNIST),
        "data.train_limit": 400,
        "data.val_size": 200,
        "train.epochs": 2,
        "train.max_steps_per_epoch": 2,
    }
    members = [{**m, "train.out_dir": str(tmp_path / m["train.out_dir"])} for m in MEMBERS[:2]]
    members.append({"train.lr": 1e30, "train.seed": 3, "train.out_dir": str(tmp_path / "bad")})
    cfgs = [cfg_of(**run, **m) for m in members]
    seen: list[tuple[int, int]] = []
    results = train_packed(
        cfgs, data=mnist_small, on_epoch=lambda m, metrics, path: seen.append((m, metrics["epoch"])), progress=False
    )
    assert sorted(seen) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert results[2].summary["status"] == "diverged" and "non-finite" in results[2].summary["error"]
    assert not results[2].checkpoint.exists()
    for m in range(2):
        assert results[m].summary["status"] == "ok"
        alone = train(
            apply_overrides(cfgs[m], {"train.out_dir": str(tmp_path / f"alone{m}")}), data=mnist_small, progress=False
        )
        # Epoch 1 (2 steps) agrees to float32 reassociation; later the FGSM sign() and Adam's
        # normalised first steps amplify last-bit differences (measured: a 1e-7 relative change
        # of the weights moves the eager loss by 3e-4 within 6 steps), hence 5e-2 for epoch 2 and
        # only the large terms (the small KS term moves by ~10%).
        every = ("train_loss", "train_rec", "val_loss", "val_rec_mse", "val_ks", "val_cov")
        checks = ((1e-3, every), (5e-2, ("train_loss", "val_loss", "val_rec_mse")))
        for mine, ref, (rel, keys) in zip(results[m].history, alone.history, checks, strict=True):
            for key in keys:
                assert mine[key] == pytest.approx(ref[key], rel=rel), (m, mine["epoch"], key)
            assert mine["lr"] == ref["lr"]
            assert 0 <= mine["probe_robustness_paper"] <= 1 and "probe_robustness_paper" in ref  # the probe, per member
        state = load_checkpoint(results[m].checkpoint)
        assert state["epoch"] == 2 and RunConfig.from_dict(state["config"]) == cfgs[m]
        cfg, model = load_model(results[m].checkpoint)
        assert cfg.loss.alpha == cfgs[m].loss.alpha and model.prior_means.shape[0] == cfgs[m].prior.num_modes
        assert (Path(cfgs[m].train.out_dir) / "metrics.jsonl").read_text().count("\n") == 2
    # the pack resumes from its members' checkpoints (one more epoch) ...
    longer = [apply_overrides(c, {"train.epochs": 3}) for c in cfgs[:2]]
    seen.clear()
    again = train_packed(
        longer,
        resume=True,
        data=mnist_small,
        on_epoch=lambda m, metrics, path: seen.append((m, metrics["epoch"])),
        progress=False,
    )
    assert sorted(seen) == [(0, 3), (1, 3)]
    for m in range(2):
        assert again[m].history[:2] == results[m].history and again[m].history[2]["epoch"] == 3
    # ... and a packed member's checkpoint resumes in the single-trial trainer
    resumed = train(apply_overrides(cfgs[0], {"train.epochs": 4}), resume=True, data=mnist_small, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]


@pytest.mark.slow
def test_train_packed_writes_every_file_atomically(mnist_small, tmp_path, monkeypatch):
    """Every file train_packed leaves in a member's folder (fresh run, then a resume) was written to a
    temporary file and renamed over its name; none was ever opened for writing under its final name,
    where a crash mid-write would leave half a file."""
    import builtins
    import io
    import os

    opened: list[Path] = []
    replaced: list[Path] = []
    real_open, real_replace = builtins.open, os.replace

    def spy_open(file, mode="r", *args, **kwargs):
        if isinstance(file, str | os.PathLike) and any(c in mode for c in "wax+"):
            opened.append(Path(file).resolve())
        return real_open(file, mode, *args, **kwargs)

    def spy_replace(src, dst, *args, **kwargs):
        replaced.append(Path(dst).resolve())
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)  # pathlib's Path.write_text opens through io.open
    monkeypatch.setattr(os, "replace", spy_replace)
    run = {
        "data.data_dir": str(MNIST),
        "data.train_limit": 400,
        "data.val_size": 200,
        "train.epochs": 1,
        "train.max_steps_per_epoch": 2,
    }
    cfgs = [cfg_of(**run, **{**m, "train.out_dir": str(tmp_path / m["train.out_dir"])}) for m in MEMBERS[:2]]
    train_packed(cfgs, data=mnist_small, progress=False)
    train_packed([apply_overrides(c, {"train.epochs": 2}) for c in cfgs], resume=True, data=mnist_small, progress=False)
    expected = {"config.json", "checkpoint.pt", "metrics.jsonl", "summary.json", "samples.png", "reconstructions.png"}
    for cfg in cfgs:
        out = Path(cfg.train.out_dir).resolve()
        files = {p.name for p in out.iterdir()}
        assert files == expected, files  # no temporary file left behind
        for name in expected:
            assert out / name in replaced, f"{name} was not renamed into place"
        direct = [p for p in opened if p.parent == out and not p.name.startswith(".")]
        assert not direct, f"opened for writing under their final names: {direct}"
    assert opened, "the spy saw no write at all"


gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@gpu
def test_graph_step_equals_eager_step_on_cuda():
    """Graph replay == eager steps (same capturable Adam, same generator stream) within 1e-4 over 12 steps,
    an lr change re-captures, lrs stay floats, and a different batch shape falls back to eager."""
    device = torch.device("cuda")
    cfg = cfg_of(**{"train.device": "cuda", "train.step_mode": "graph"})
    torch.manual_seed(0)
    a = create_model(cfg, SHAPE).to(device)
    b = copy.deepcopy(a)
    opt_a = torch.optim.Adam(a.parameters(), lr=0.002, capturable=True)
    opt_b = torch.optim.Adam(b.parameters(), lr=0.002)
    eager, graph = eager_step(a, opt_a), make_train_step(b, opt_b, cfg, device)
    ga, gb = (torch.Generator(device=device).manual_seed(1) for _ in range(2))
    data = torch.rand(12, 100, *SHAPE, device=device, generator=torch.Generator(device=device).manual_seed(0))
    for t in range(12):
        if t == 6:  # what ReduceLROnPlateau does to float lrs: the graph step re-captures
            opt_a.param_groups[0]["lr"] = opt_b.param_groups[0]["lr"] = 0.0005
        out_a, out_b = eager(data[t], ga), graph(data[t], gb)
        torch.testing.assert_close(out_b["loss"], out_a["loss"], rtol=1e-4, atol=1e-4)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pb, pa, rtol=1e-4, atol=1e-4, msg=name)
    assert isinstance(opt_b.param_groups[0]["lr"], float)
    small = graph(data[0, :50], gb)
    assert math.isfinite(small["loss"].item())


@pytest.mark.gpu
@gpu
def test_packed_equals_eager_on_cuda():
    device = torch.device("cuda")
    cfgs = [cfg_of(**{**m, "train.device": "cuda"}) for m in MEMBERS]
    models = [build(c).to(device) for c in cfgs]
    singles = [copy.deepcopy(m) for m in models]
    steps = [eager_step(m, torch.optim.Adam(m.parameters(), lr=c.train.lr)) for m, c in zip(singles, cfgs, strict=True)]
    pm = PackedModels(models, cfgs, [c.train.lr for c in cfgs], PackConfig())
    gens = [torch.Generator(device=device).manual_seed(c.train.seed + 1) for c in cfgs]
    gens1 = [torch.Generator(device=device).manual_seed(c.train.seed + 1) for c in cfgs]
    data = torch.rand(3, 3, 32, *SHAPE, device=device, dtype=torch.float64)
    for t in range(3):
        pm.step(data[t], pm.draw(gens, 32))
        for m in range(3):
            steps[m](data[t, m], gens1[m])
    for m, model in enumerate(singles):
        for name, p in model.named_parameters():
            torch.testing.assert_close(pm.params[name][m], p.detach(), rtol=1e-8, atol=1e-9)


@pytest.mark.gpu
@gpu
def test_packed_graph_equals_packed_eager_on_cuda():
    """The pack step replayed from one CUDA graph == the eager pack step (same generators), 1e-5."""
    device = torch.device("cuda")
    cfgs = [cfg_of(**{**m, "train.device": "cuda"}) for m in MEMBERS]
    models = [build(c, torch.float32).to(device) for c in cfgs]
    eager = PackedModels(models, cfgs, [c.train.lr for c in cfgs], PackConfig())
    graphed_pm = PackedModels([copy.deepcopy(m) for m in models], cfgs, [c.train.lr for c in cfgs], PackConfig())
    gens_e = [torch.Generator(device=device).manual_seed(c.train.seed + 1) for c in cfgs]
    gens_g = [torch.Generator(device=device).manual_seed(c.train.seed + 1) for c in cfgs]
    data = torch.rand(6, 3, 100, *SHAPE, device=device)
    graph = PackedGraph(graphed_pm, gens_g, data[0])
    for t in range(6):
        if t == 3:  # per-member lr changes reach the graph
            eager.adam.lr[1] = graphed_pm.adam.lr[1] = 1e-4
        out_e, out_g = eager.step(data[t], eager.draw(gens_e, 100)), graph(data[t])
        torch.testing.assert_close(out_g["loss"], out_e["loss"], rtol=1e-5, atol=1e-5)
    for name in eager.names:
        torch.testing.assert_close(graphed_pm.params[name], eager.params[name], rtol=1e-5, atol=1e-5, msg=name)


def test_make_optimizer_is_fused_adam_with_the_default_update():
    """The fused Adam of make_optimizer follows torch's default Adam (float64, 1e-12 after 5 steps)."""
    torch.manual_seed(0)
    a = torch.nn.Linear(6, 4).double()
    b = copy.deepcopy(a)
    fast, plain = make_optimizer(a, cfg_of()), torch.optim.Adam(b.parameters(), lr=cfg_of().train.lr)
    assert fast.param_groups[0]["fused"]
    for _ in range(5):
        x = torch.randn(8, 6, dtype=torch.float64)
        for model, opt in ((a, fast), (b, plain)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-12, atol=1e-12)
