"""Search spaces and sweep definitions: mapping onto RunConfig, unknown keys, impossible ranges."""

from pathlib import Path

import pytest

from radae.config import RunConfig, apply_overrides
from radae.sweep.definition import DefinitionError, load_definition, parse_definition
from radae.sweep.space import Grid, LogUniform, SearchSpace, SpaceError

SWEEPS = sorted((Path(__file__).parents[1] / "sweeps").glob("*.yaml"))
BASE = apply_overrides(RunConfig(), {"data.name": "mnist"})


def test_sampled_params_become_the_trial_config():
    space = SearchSpace.from_dict(
        {
            "loss.alpha": {"type": "uniform", "low": 0.1, "high": 1.0},
            "prior.num_modes": {"type": "choice", "values": [1, 5, 10, 15, 20, 25]},
            "loss.ks_mult": {"type": "loguniform", "low": 0.1, "high": 10.0},
            "adv.method": {"type": "choice", "values": ["fgsm", "pgd"]},
            "adv.pgd_steps": {"type": "int", "low": 2, "high": 10},
        }
    )
    cfg = space.to_config(
        BASE, {"loss.alpha": 0.42, "prior.num_modes": 25, "loss.ks_mult": 3.0, "adv.method": "pgd", "adv.pgd_steps": 7}
    )
    assert (cfg.loss.alpha, cfg.prior.num_modes, cfg.loss.ks_mult, cfg.adv.method, cfg.adv.pgd_steps) == (
        0.42,
        25,
        3.0,
        "pgd",
        7,
    )
    # K = 25 > latent_dim = 10: the auto placement switches to spread; every other field is the base's.
    assert cfg.placement == "spread" and cfg.model.latent_dim == 10
    untouched = {k for k in cfg.flat() if not k.startswith(("loss.alpha", "prior.num_modes", "loss.ks_mult", "adv."))}
    assert {k: cfg.flat()[k] for k in untouched} == {k: BASE.flat()[k] for k in untouched}


def test_unknown_keys_are_rejected_at_definition_and_at_sampling():
    with pytest.raises(SpaceError, match="loss.alfa"):
        SearchSpace.from_dict({"loss.alfa": {"type": "uniform", "low": 0.1, "high": 1.0}})
    space = SearchSpace.from_dict({"loss.alpha": {"type": "uniform", "low": 0.1, "high": 1.0}})
    with pytest.raises(SpaceError, match="prior.num_modes"):
        space.to_config(BASE, {"loss.alpha": 0.5, "prior.num_modes": 5})
    with pytest.raises(SpaceError, match="unknown search-space type"):
        SearchSpace.from_dict({"loss.alpha": {"type": "gaussian", "low": 0.1, "high": 1.0}})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"loss.alpha": {"type": "uniform", "low": 0.9, "high": 0.1}}, "low 0.9 > high 0.1"),
        ({"loss.ks_mult": {"type": "loguniform", "low": 0.0, "high": 10.0}}, "must be > 0"),
        ({"loss.ks_mult": {"type": "loguniform", "low": -1.0, "high": 10.0}}, "must be > 0"),
        ({"adv.pgd_steps": {"type": "int", "low": 10, "high": 2}}, "low 10 > high 2"),
        ({"prior.num_modes": {"type": "choice", "values": []}}, "at least one value"),
    ],
)
def test_impossible_ranges_fail_naming_the_key(spec, message):
    with pytest.raises(SpaceError, match=message):
        SearchSpace.from_dict(spec)


def test_ranges_outside_the_config_validity_fail_before_any_trial():
    space = SearchSpace.from_dict({"loss.alpha": {"type": "uniform", "low": 0.1, "high": 1.5}})
    with pytest.raises(SpaceError, match=r"loss.alpha=1.5 .*must be in \[0, 1\]"):
        space.validate(BASE)
    onehot = apply_overrides(BASE, {"prior.placement": "onehot"})
    modes = SearchSpace.from_dict({"prior.num_modes": {"type": "grid", "values": [1, 25]}})
    with pytest.raises(SpaceError, match="prior.num_modes=25"):
        modes.validate(onehot)
    modes.validate(BASE)  # auto placement handles K > D


def test_grid_enumerates_the_cross_product():
    space = SearchSpace.from_dict(
        {
            "loss.alpha": {"type": "grid", "values": [0.5, 0.95]},
            "prior.num_modes": {"type": "grid", "values": [1, 10, 25]},
        }
    )
    assert space.is_grid and space.grid_size() == 6
    points = space.grid_points()
    assert len({tuple(p.items()) for p in points}) == 6
    assert {"loss.alpha": 0.95, "prior.num_modes": 25} in points
    assert isinstance(space.params["loss.alpha"], Grid)
    assert isinstance(
        SearchSpace.from_dict({"loss.ks_mult": {"type": "loguniform", "low": 0.1, "high": 10}}).params["loss.ks_mult"],
        LogUniform,
    )


def test_optuna_distributions_match_the_specs():
    space = SearchSpace.from_dict(
        {
            "loss.ks_mult": {"type": "loguniform", "low": 0.1, "high": 10.0},
            "adv.pgd_steps": {"type": "int", "low": 2, "high": 10},
            "adv.method": {"type": "choice", "values": ["fgsm", "pgd"]},
        }
    )
    dists = space.optuna_space()
    assert dists["loss.ks_mult"].log and (dists["loss.ks_mult"].low, dists["loss.ks_mult"].high) == (0.1, 10.0)
    assert (dists["adv.pgd_steps"].low, dists["adv.pgd_steps"].high) == (2, 10)
    assert dists["adv.method"].choices == ("fgsm", "pgd")


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
@pytest.mark.parametrize("smoke", [False, True])
def test_shipped_sweep_definitions_are_valid(path, smoke):
    defn = load_definition(path, smoke=smoke)
    base = defn.base_config()
    defn.space.validate(base)
    assert defn.num_samples >= 1
    if smoke:
        assert base.train.epochs <= 2 and base.data.train_limit <= 5000 and base.eval.fid_samples <= 1000
    # Every searched value of a grid gives a valid trial config.
    if defn.space.is_grid:
        for point in defn.space.grid_points():
            defn.space.to_config(base, point)


def test_the_issue_search_space_is_the_shipped_one():
    space = load_definition(Path(__file__).parents[1] / "sweeps" / "search.yaml").space.params
    assert space["prior.num_modes"].values == (1, 5, 10, 15, 20, 25)
    assert (space["loss.alpha"].low, space["loss.alpha"].high) == (0.1, 1.0)
    assert all(space[k].log for k in ("loss.ks_mult", "loss.cov_mult", "loss.rec_mult"))
    assert set(space["adv.method"].values) == {"fgsm", "pgd"} and "adv.pgd_steps" in space
    modes = load_definition(Path(__file__).parents[1] / "sweeps" / "alpha_modes.yaml").space.params
    assert modes["prior.num_modes"].values == (1, 5, 10, 15, 20, 25) and 0.1 in modes["loss.alpha"].values


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"objective": {"mode": "scalar"}, "space": {"loss.alpha": {"type": "uniform", "low": 0.1, "high": 1}}},
            "num_samples is required",
        ),
        ({"objective": {"mode": "best"}, "space": {}}, "objective.mode"),
        (
            {
                "objective": {"mode": "pareto"},
                "num_samples": 2,
                "space": {"loss.alpha": {"type": "uniform", "low": 0.1, "high": 1}},
                "scheduler": {"type": "asha", "metric": "val_loss", "mode": "min"},
            },
            "scalar objective",
        ),
        (
            {
                "objective": {"mode": "scalar"},
                "num_samples": 2,
                "space": {"loss.ks_mult": {"type": "loguniform", "low": 0.1, "high": 10}},
                "scheduler": {"type": "asha", "metric": "val_loss", "mode": "min"},
            },
            "scheduler.metric val_loss is the weighted eq. 10 loss, whose scale changes with the searched loss.ks_mult",
        ),
        (
            {
                "objective": {"mode": "scalar"},
                "base": {"train.epoch": 3},
                "num_samples": 1,
                "space": {"loss.alpha": {"type": "uniform", "low": 0.1, "high": 1}},
            },
            "train.epoch",
        ),
        (
            {
                "objective": {"mode": "scalar"},
                "space": {"loss.alpha": {"type": "grid", "values": [0.5]}},
                "num_samples": 3,
            },
            "exceeds",
        ),
        ({"objective": {"mode": "scalar"}, "sapce": {}}, "unknown fields"),
    ],
)
def test_bad_definitions_fail_with_a_message(raw, message):
    with pytest.raises(DefinitionError, match=message):
        parse_definition(raw)


GOOD = {"objective": {"mode": "scalar"}, "base": {"data.name": "mnist"}}


@pytest.mark.parametrize(
    ("over", "key", "bad", "known"),
    [
        (
            {"space": {"model.name": {"type": "grid", "values": ["rae", "vea"]}}},
            "model.name",
            "vea",
            "avae, .*rae, se, vae",
        ),
        (
            {"space": {"adv.method": {"type": "choice", "values": ["fgsm", "pgdd"]}}, "num_samples": 2},
            "adv.method",
            "pgdd",
            "fgsm, none, pgd",
        ),
        ({"space": {"model.arch": {"type": "grid", "values": ["mlp", "vit"]}}}, "model.arch", "vit", "conv, mlp"),
        (
            {
                "base": {"data.name": "mnist", "adv.method": "cw"},
                "space": {"loss.alpha": {"type": "grid", "values": [0.5]}},
            },
            "adv.method",
            "cw",
            "fgsm, none, pgd",
        ),
        (
            {"space": {"prior.placement": {"type": "grid", "values": ["spread", "bogus"]}}},
            "prior.placement",
            "bogus",
            "auto, onehot, roll, sobol-doubling, spread",
        ),
        (
            {
                "base": {"data.name": "mnist", "eval.attack_impl": "lbfgs"},
                "space": {"loss.alpha": {"type": "grid", "values": [0.5]}},
            },
            "eval.attack_impl",
            "lbfgs",
            "batched, lbfgsb-authors",
        ),
        (
            {"space": {"loss.ks_weighting": {"type": "choice", "values": ["eq6", "both"]}}, "num_samples": 2},
            "loss.ks_weighting",
            "both",
            "eq6, separate",
        ),
    ],
)
def test_unknown_registry_names_are_refused_when_the_definition_is_parsed(over, key, bad, known):
    """Every candidate value is checked (the bad one follows a good one), naming the key and the known names."""
    with pytest.raises(DefinitionError, match=rf"{key} '{bad}' is unknown; known: {known}"):
        parse_definition({**GOOD, **over})


def test_space_validation_checks_every_choice_value_against_the_registries():
    SearchSpace.from_dict({"model.name": {"type": "choice", "values": ["rae", "vae"]}}).validate(BASE)
    with pytest.raises(
        SpaceError, match=r"search space model.name='vea' gives an invalid config: model.name 'vea' is unknown"
    ):
        SearchSpace.from_dict({"model.name": {"type": "choice", "values": ["rae", "vae", "vea"]}}).validate(BASE)
