"""Evaluation attacks (radae.attacks): constraints, batching, and strength against SciPy's L-BFGS-B."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from radae.attacks import (
    ATTACK_IMPLS,
    ATTACKS,
    AUTHORS_SETTINGS,
    LatentAttack,
    LBFGSBAttack,
    LBFGSBSettings,
    MaxDamageAttack,
    NoisyDecoding,
    lbfgsb_one,
    project_l2_box,
    random_start,
    strength,
)
from radae.config import DataConfig

LEVELS = (1.0, 3.0, 5.0)


class TinyAE(nn.Module):
    """A small MLP autoencoder on 32x32 MNIST, trained for ~1 s in the fixture."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 10))
        self.decoder = nn.Sequential(
            nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 1024), nn.Sigmoid(), nn.Unflatten(1, (1, 32, 32))
        )

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mnist(one_thread):
    from radae.data import DataError, load_dataset

    try:
        return load_dataset(DataConfig(name="mnist", data_dir="/work/shared/data/mnist", download=False))
    except DataError as err:
        pytest.skip(f"real MNIST not available: {err}")


@pytest.fixture(scope="module")
def tiny_ae(mnist):
    torch.manual_seed(0)
    model = TinyAE()
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    x = mnist.train.get(torch.arange(10000))
    for _ in range(2):
        for i in range(0, len(x), 100):
            loss = (model.decode(model.encode(x[i : i + 100])) - x[i : i + 100]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval().requires_grad_(False)


def test_registry_names_both_attacks():
    assert ATTACKS.names() == ["latent", "max_damage"]
    assert isinstance(ATTACKS.create("latent", steps=3), LatentAttack)


def test_projection_is_the_euclidean_projection_onto_ball_and_box():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 8, 8, generator=g)
    x[:, :, :4] = 0.0  # MNIST-like: many pixels on the box edge
    v = 3 * torch.randn(x.shape, generator=g)
    radius = torch.rand(64, generator=g) * 4 + 0.1
    p = project_l2_box(v, x, radius)
    assert (p.flatten(1).norm(dim=1) <= radius + 1e-5).all()
    assert ((x + p) >= -1e-7).all() and ((x + p) <= 1 + 1e-7).all()
    # Variational inequality of a projection onto a convex set: <v - p, q - p> <= 0 for feasible q.
    for _ in range(20):
        q = project_l2_box(3 * torch.randn(x.shape, generator=g), x, radius)
        assert ((v - p).flatten(1) * (q - p).flatten(1)).sum(1).max() < 1e-4
    inside = 0.01 * torch.rand(x.shape, generator=g)
    assert torch.equal(project_l2_box(inside, x, radius), inside.clamp(-x, 1 - x))


def test_random_starts_are_feasible_and_spread():
    x = torch.rand(500, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    radius = torch.full((500,), 2.0)
    d = random_start(x, radius, torch.Generator().manual_seed(2))
    norms = d.flatten(1).norm(dim=1)
    assert (norms <= 2.0 + 1e-5).all() and norms.std() > 0
    assert ((x + d) >= 0).all() and ((x + d) <= 1).all()


@pytest.mark.parametrize("name", ["latent", "max_damage"])
def test_batched_rows_are_feasible_ordered_and_chunk_invariant(tiny_ae, mnist, name):
    x, xt = mnist.test.get(torch.arange(5)), mnist.test.get(torch.arange(5, 10))
    attack = ATTACKS.create(name, steps=10)
    res = attack.run(tiny_ae, x, LEVELS, 2, targets=xt, generator=torch.Generator().manual_seed(0))
    assert res.x_adv.shape == (30, 1, 32, 32) and res.loss.shape == (30,)
    # Row (l * trials + t) * n + i.
    assert res.image_index.tolist() == list(range(5)) * 6
    assert res.trial_index.tolist() == ([0] * 5 + [1] * 5) * 3
    assert res.level.tolist() == [1.0] * 10 + [3.0] * 10 + [5.0] * 10
    delta = res.x_adv - x[res.image_index]
    assert (delta.flatten(1).norm(dim=1) <= res.level + 1e-4).all()
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    const = attack.prepare(tiny_ae, x, xt)[res.image_index]
    assert torch.allclose(attack.objective(tiny_ae, res.x_adv, const), res.loss, rtol=1e-4, atol=1e-5)
    chunked = ATTACKS.create(name, steps=10, batch_size=7)
    res2 = chunked.run(tiny_ae, x, LEVELS, 2, targets=xt, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(res.loss, res2.loss, rtol=1e-4, atol=1e-5)


def test_attacks_get_stronger_with_lambda(tiny_ae, mnist):
    x, xt = mnist.test.get(torch.arange(6)), mnist.test.get(torch.arange(6, 12))
    g = torch.Generator().manual_seed(0)
    lat = LatentAttack(steps=30).run(tiny_ae, x, LEVELS, 1, targets=xt, generator=g)
    dmg = MaxDamageAttack(steps=30).run(tiny_ae, x, LEVELS, 1, generator=g)
    lat_mean = [lat.loss[lat.level_index == i].mean() for i in range(3)]
    dmg_mean = [dmg.loss[dmg.level_index == i].mean() for i in range(3)]
    clean = (tiny_ae.encode(x) - tiny_ae.encode(xt)).pow(2).sum(1).mean()
    assert clean > lat_mean[0] > lat_mean[1] > lat_mean[2]
    assert 0 < dmg_mean[0] < dmg_mean[1] < dmg_mean[2]


def test_bad_budgets_and_missing_targets_raise(tiny_ae):
    x = torch.rand(2, 1, 32, 32)
    with pytest.raises(ValueError, match="lambda must be > 0"):
        MaxDamageAttack(steps=2).run(tiny_ae, x, (1.0, 0.0), 1)
    with pytest.raises(ValueError, match="target image"):
        LatentAttack(steps=2).run(tiny_ae, x, (1.0,), 1)


def lbfgs_reference(attack, model, x, const, radius, start, maxcor):
    """The reference method: SciPy L-BFGS-B on one image, in float64, with SciPy's default tolerances.

    radae.attacks.lbfgsb_one (the ``lbfgsb-authors`` evaluation's optimiser): the box [-x, 1 - x]
    goes to L-BFGS-B as bounds; the L2 ball is handled by evaluating the objective at the radial
    projection d * min(1, r / ||d||), which stays in the box (the box holds 0), so the optimum it
    reports is feasible.
    """
    settings = LBFGSBSettings(maxcor=maxcor, factr=1e7, pgtol=1e-5)  # scipy.optimize.minimize's defaults
    _, value = lbfgsb_one(attack, model.double(), x.double(), const.double(), radius, start.double(), settings)
    model.float()
    return value


# The strength gate: per lambda, the batched attack's mean objective must be at least L-BFGS-B's
# from the same starts, and on the held-out images at least the best of 3 L-BFGS-B starts per row, up
# to 1%. Measured on these images it is 0.1-4% stronger (docs/evaluation.md, "Strength gate"), so the
# verdict does not hang on the last digits of a CPU's float kernels.
REL_TOL = 0.01


@pytest.mark.slow
@pytest.mark.parametrize("name,maxcor", [("latent", 25), ("max_damage", 100)])
@pytest.mark.parametrize("first,count,ref_starts", [(0, 4, 1), (500, 10, 3)], ids=["tuned", "held-out"])
def test_batched_attack_as_strong_as_lbfgs_image_by_image(tiny_ae, mnist, name, maxcor, first, count, ref_starts):
    x = mnist.test.get(torch.arange(first, first + count))
    xt = mnist.test.get(torch.arange(first + count, first + 2 * count))
    attack = ATTACKS.create(name)  # the evaluation's default steps, schedule and restarts
    res = attack.run(tiny_ae, x, LEVELS, 1, targets=xt, generator=torch.Generator().manual_seed(0))
    # L-BFGS-B's first start is where the batched attack's first start was (its further starts are drawn
    # after); its further starts come from another generator.
    gen = torch.Generator().manual_seed(0)
    starts = [random_start(x[res.image_index], res.level, gen)]
    extra = torch.Generator().manual_seed(1)
    starts += [random_start(x[res.image_index], res.level, extra) for _ in range(ref_starts - 1)]
    const = attack.prepare(tiny_ae, x, xt)
    ref = torch.tensor(
        [
            [
                lbfgs_reference(attack, tiny_ae, x[i], const[i], float(r), s, maxcor)
                for i, r, s in zip(res.image_index, res.level, run, strict=True)
            ]
            for run in starts
        ]
    )
    assert np.isfinite(ref.numpy()).all()
    best = (attack.sign * ref).min(dim=0).values * attack.sign  # per row, the strongest L-BFGS-B start
    for li, level in enumerate(LEVELS):
        rows = res.level_index == li
        ours = res.loss[rows].mean().item()
        compared = [("same start", ref[0][rows].mean().item())]
        compared += [(f"best of {ref_starts}", best[rows].mean().item())] if ref_starts > 1 else []
        for what, theirs in compared:
            # ratio > 1: the batched attack is the stronger (lower latent distance, more damage).
            ratio = strength(ours, theirs, attack.sign)
            print(f"{name} lambda={level}: batched {ours:.4f}  L-BFGS-B ({what}) {theirs:.4f}  strength {ratio:.4f}")
            assert ratio >= 1 - REL_TOL, (
                f"{name} at lambda {level}: batched {ours:.4f} vs L-BFGS-B ({what}) {theirs:.4f}"
            )


def test_screened_restarts_are_feasible_exact_and_stronger_than_one_start(tiny_ae, mnist):
    x = mnist.test.get(torch.arange(10))
    one = MaxDamageAttack(restarts=1).run(tiny_ae, x, LEVELS, 1, generator=torch.Generator().manual_seed(3))
    four = MaxDamageAttack(restarts=4).run(tiny_ae, x, LEVELS, 1, generator=torch.Generator().manual_seed(3))
    assert MaxDamageAttack().restarts == 4 and LatentAttack().restarts == 4
    delta = four.x_adv - x[four.image_index]
    assert (delta.flatten(1).norm(dim=1) <= four.level + 1e-4).all()
    assert four.x_adv.min() >= 0 and four.x_adv.max() <= 1
    const = MaxDamageAttack().prepare(tiny_ae, x, None)[four.image_index]
    torch.testing.assert_close(MaxDamageAttack().objective(tiny_ae, four.x_adv, const), four.loss, rtol=1e-4, atol=1e-5)
    # Screening picks each row's best start after a quarter of the steps: not always the best at the
    # end, but stronger on average than one start (measured 1-2% at lambda 3 and 5).
    for li in range(len(LEVELS)):
        rows = one.level_index == li
        assert four.loss[rows].mean() >= one.loss[rows].mean() * (1 - REL_TOL)
    with pytest.raises(ValueError, match="restarts=0"):
        MaxDamageAttack(restarts=0)


def test_attack_implementations_by_name_with_the_authors_settings():
    assert ATTACK_IMPLS.names() == ["batched", "lbfgsb-authors"]
    assert isinstance(ATTACK_IMPLS.create("batched", name="latent", steps=3), LatentAttack)
    lat = ATTACK_IMPLS.create("lbfgsb-authors", name="latent", maxfun=77)
    dmg = ATTACK_IMPLS.create("lbfgsb-authors", name="max_damage")
    assert isinstance(lat, LBFGSBAttack) and isinstance(lat.attack, LatentAttack)
    # Robust_GMM_DAE attacks/latentspaceattack.py (m=25, factr=10) and outputattack.py (m=100, factr=10, pgtol=1e-20).
    assert (lat.settings.maxcor, lat.settings.factr, lat.settings.pgtol, lat.settings.maxfun) == (25, 10.0, 1e-5, 77)
    assert (dmg.settings.maxcor, dmg.settings.factr, dmg.settings.pgtol) == (100, 10.0, 1e-20)
    assert AUTHORS_SETTINGS["max_damage"].maxfun == 15000
    with pytest.raises(KeyError, match="batched, lbfgsb-authors"):
        ATTACK_IMPLS.get("pgd")


@pytest.mark.parametrize("name", ["latent", "max_damage"])
def test_lbfgsb_rows_are_feasible_and_ordered_like_the_batched_attack(tiny_ae, mnist, name):
    x, xt = mnist.test.get(torch.arange(2)), mnist.test.get(torch.arange(2, 4))
    attack = ATTACK_IMPLS.create("lbfgsb-authors", name=name, maxfun=60)
    res = attack.run(tiny_ae, x, LEVELS, 2, targets=xt, generator=torch.Generator().manual_seed(0))
    batched = ATTACKS.create(name, steps=2).run(
        tiny_ae, x, LEVELS, 2, targets=xt, generator=torch.Generator().manual_seed(0)
    )
    for key in ("level", "level_index", "trial_index", "image_index"):
        assert torch.equal(getattr(res, key), getattr(batched, key)), key
    delta = res.x_adv - x[res.image_index]
    assert (delta.flatten(1).norm(dim=1) <= res.level * (1 + 1e-5)).all()
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    const = attack.attack.prepare(tiny_ae, x, xt)[res.image_index]
    assert torch.allclose(attack.attack.objective(tiny_ae, res.x_adv, const), res.loss, rtol=1e-4, atol=1e-5)
    # It optimises: better than its own random start at every row (lower latent distance, more damage).
    starts = x[res.image_index] + random_start(x[res.image_index], res.level, torch.Generator().manual_seed(0))
    at_start = attack.attack.objective(tiny_ae, starts, const)
    assert (attack.sign * res.loss < attack.sign * at_start).all()


def test_decode_noise_perturbs_every_decode_and_nothing_else(tiny_ae, mnist):
    x = mnist.test.get(torch.arange(64))
    z = tiny_ae.encode(x)
    off = NoisyDecoding(tiny_ae, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(off.reconstruct(x), tiny_ae.decode(z))
    noisy = NoisyDecoding(tiny_ae, 0.4, torch.Generator().manual_seed(0))
    assert torch.equal(noisy.encode(x), z)
    a, b = noisy.decode(z), noisy.decode(z)
    assert not torch.equal(a, b)  # a fresh draw per call, as the authors' forward()
    # The same draws by hand: decode(z + 0.4 xi).
    xi = torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, tiny_ae.decode(z + 0.4 * xi))
    with pytest.raises(ValueError, match="decode noise"):
        NoisyDecoding(tiny_ae, -1.0, torch.Generator())
