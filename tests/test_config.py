"""RunConfig: resolution of dataset defaults, dotted overrides, validation naming the field."""

import json

import pytest

from radae.config import PAPER_DEFAULTS, ConfigError, RunConfig, apply_overrides, known_keys
from radae.registry import Registry


def test_defaults_resolve_to_the_datasets_paper_settings():
    cfg = RunConfig()
    assert cfg.data.name == "fashion-mnist"
    assert (cfg.model.arch, cfg.model.latent_dim, cfg.prior.num_modes, cfg.loss.alpha) == ("mlp", 10, 10, 0.95)
    assert cfg.placement == "onehot"
    assert cfg.train.out_dir == "runs/fashion-mnist-rae"


def test_changing_dataset_rederives_its_defaults_but_keeps_explicit_values():
    svhn = apply_overrides(RunConfig(), {"data.name": "svhn"})
    assert (svhn.model.arch, svhn.model.latent_dim, svhn.loss.alpha) == ("conv", 100, 0.92)
    celeba = apply_overrides(RunConfig(), {"data.name": "celeba", "model.latent_dim": 32})
    assert celeba.model.latent_dim == 32 and celeba.prior.num_modes == 20
    assert celeba.train.out_dir == "runs/celeba-rae"


def test_more_modes_than_dimensions_switch_auto_placement_to_spread():
    assert apply_overrides(RunConfig(), {"prior.num_modes": 25}).placement == "spread"


@pytest.mark.parametrize("placement", ["sobol-doubling", "roll", "spread"])
def test_named_placements_stay_for_every_k(placement):
    for k in (1, 10, 25):
        assert apply_overrides(RunConfig(), {"prior.num_modes": k, "prior.placement": placement}).placement == placement


def test_new_settings_default_to_todays_behaviour():
    cfg = RunConfig()
    assert cfg.loss.ks_weighting == "eq6" and cfg.prior.placement == "auto"
    assert cfg.eval.attack_impl == "batched" and cfg.eval.decode_noise_latent == 0.0 == cfg.eval.decode_noise_max_damage


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"loss.alpha": 1.5}, "loss.alpha"),
        ({"loss.alpha": -0.1}, "loss.alpha"),
        ({"prior.num_modes": 0}, "prior.num_modes"),
        ({"prior.placement": "onehot", "prior.num_modes": 11}, "prior.num_modes"),
        ({"adv.eps": -0.1}, "adv.eps"),
        ({"loss.ks_weight": -1}, "loss.ks_weight"),
        ({"loss.rec_weight": -1}, "loss.rec_weight"),
        ({"train.epochs": "two"}, "train.epochs"),
        ({"data.name": "cifar10"}, "data.name"),
        ({"loss.alfa": 0.5}, "loss.alfa"),
        ({"nosection.x": 1}, "nosection.x"),
        ({"prior.num_modes": 2.5}, "prior.num_modes"),
        ({"eval.levels": "1,-3"}, "eval.levels"),
        ({"train.lr": "inf"}, "train.lr"),
        ({"adv.eps": float("inf")}, "adv.eps"),
        ({"loss.rec_mult": "Infinity"}, "loss.rec_mult"),
        ({"eval.levels": "1,inf"}, "eval.levels"),
        ({"data.resize": "nearest"}, "data.resize"),
        ({"loss.ks_weighting": "paper"}, "loss.ks_weighting"),
        ({"prior.placement": "grid"}, "prior.placement"),
        ({"eval.attack_impl": "lbfgs"}, "eval.attack_impl"),
        ({"eval.decode_noise_latent": -0.4}, "eval.decode_noise_latent"),
        ({"eval.lbfgsb_maxfun": 0}, "eval.lbfgsb_maxfun"),
    ],
)
def test_invalid_values_name_the_field(overrides, field):
    """Validation = apply_overrides (values) + radae.names.check_names (registry names), as every entry point does."""
    from radae.names import check_names

    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        check_names(apply_overrides(RunConfig(), overrides))


def test_overrides_coerce_cli_strings():
    cfg = apply_overrides(
        RunConfig(),
        {
            "loss.alpha": "0.5",
            "train.epochs": "3",
            "loss.adv_rec": "true",
            "data.train_limit": "none",
            "eval.levels": "1,2",
        },
    )
    assert cfg.loss.alpha == 0.5 and cfg.train.epochs == 3 and cfg.loss.adv_rec is True
    assert cfg.data.train_limit is None and cfg.eval.levels == (1.0, 2.0)


def test_round_trip_through_json():
    cfg = apply_overrides(RunConfig(), {"data.name": "mnist", "prior.num_modes": 25, "adv.method": "pgd"})
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_flat_keys_are_exactly_the_known_keys():
    assert sorted(RunConfig().flat()) == sorted(known_keys())


def test_data_resize_is_recorded_in_the_flat_config():
    # flat() is what MLflow params and the sweep's Parquet `config.*` columns are built from.
    assert RunConfig().flat()["data.resize"] == "bilinear"
    assert apply_overrides(RunConfig(), {"data.resize": "pad"}).flat()["data.resize"] == "pad"


def test_every_dataset_default_names_an_existing_key():
    keys = set(known_keys())
    for defaults in PAPER_DEFAULTS.values():
        assert set(defaults) <= keys


def test_registry_builds_by_name_and_lists_known_on_error():
    reg = Registry("widget")

    @reg.register("a")
    def make_a(x=1):
        return ("a", x)

    assert reg.create("a", x=2) == ("a", 2)
    assert "a" in reg and reg.names() == ["a"]
    with pytest.raises(KeyError, match="unknown widget 'b'; known: a"):
        reg.get("b")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(make_a)


def test_every_registered_name_is_a_valid_config_and_unknown_names_list_the_known():
    """radae.names: each registry-backed field accepts exactly its registry's names (plus auto where
    allowed); an unknown name fails there, naming the key, the value and every known name."""
    from radae.names import NAMED_FIELDS, check_names, known_names

    base = apply_overrides(RunConfig(), {"data.name": "mnist"})
    assert check_names(base) is base
    for key in NAMED_FIELDS:
        known = known_names(key)
        assert known and len(set(known)) == len(known), key
        for name in known:
            check_names(apply_overrides(base, {key: name}))
        if key == "data.name":  # RunConfig needs the dataset's paper settings, so it refuses others itself
            with pytest.raises(ConfigError, match="data.name must be one of"):
                apply_overrides(base, {key: "nope"})
            continue
        with pytest.raises(ConfigError, match=rf"^{key} 'nope' is unknown; known: {', '.join(known)}$"):
            check_names(apply_overrides(base, {key: "nope"}))


def test_registry_names_are_checked_in_one_place_and_every_dataset_has_paper_settings():
    """RunConfig holds any name (it imports no registry); radae.names is the one check. The
    datasets with paper settings are exactly the registered ones."""
    from radae.data import DATASETS
    from radae.names import check_names

    odd = apply_overrides(RunConfig(), {"prior.placement": "bogus", "loss.ks_weighting": "x", "eval.attack_impl": "y"})
    assert odd.prior.placement == "bogus"
    with pytest.raises(
        ConfigError, match=r"^prior.placement 'bogus' is unknown; known: auto, onehot, roll, sobol-doubling, spread$"
    ):
        check_names(odd)
    assert set(PAPER_DEFAULTS) == set(DATASETS.names())
