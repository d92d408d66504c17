"""Seeds: definitions, row columns, and what Optuna is told per configuration."""

import statistics

import optuna
import pytest

from radae.config import RunConfig
from radae.objective import FINAL_KEY, make_objective
from radae.store.studies import load_study
from radae.sweep.definition import DefinitionError, parse_definition, with_seeds
from radae.sweep.packing import PACK_KEY, member_metric
from radae.sweep.searcher import OptunaSearcher, build_searcher
from radae.sweep.seeds import SEED_KEY, config_key, config_label, seed_columns, trial_config
from radae.sweep.space import SearchSpace

GRID = {"loss.alpha": {"type": "grid", "values": [0.5, 0.95]}, "prior.num_modes": {"type": "grid", "values": [1, 25]}}
RAW = {"objective": {"mode": "scalar"}, "space": GRID, "base": {"train.seed": 7}}


def test_seeds_are_validated_with_a_clear_error():
    assert parse_definition(RAW).seeds == 1
    assert parse_definition({**RAW, "seeds": 3}).seeds == 3
    smoke = parse_definition({**RAW, "seeds": 3, "smoke": {"seeds": 2}}, smoke=True)
    assert smoke.seeds == 2 and smoke.describe()["sweep.seeds"] == 2
    for bad in (0, -1, 1.5, True, "2", None):
        with pytest.raises(DefinitionError, match=r"seeds must be an integer >= 1.*got"):
            parse_definition({**RAW, "seeds": bad})
    with pytest.raises(DefinitionError, match="seeds must be an integer"):
        parse_definition({**RAW, "smoke": {"seeds": 0}}, smoke=True)
    searched = {**RAW, "space": {**GRID, "train.seed": {"type": "grid", "values": [0, 1]}}}
    assert parse_definition(searched).seeds == 1  # searching seeds by hand stays possible
    with pytest.raises(DefinitionError, match="do not also search train.seed"):
        parse_definition({**searched, "seeds": 2})
    with pytest.raises(DefinitionError, match="--seeds must be an integer"):
        with_seeds(parse_definition(RAW), 0)
    assert with_seeds(parse_definition(RAW), 4).seeds == 4 and with_seeds(parse_definition(RAW), None).seeds == 1


def test_config_key_and_label_ignore_the_seed():
    a = {"loss.alpha": 0.95, "prior.num_modes": 10}
    key = config_key(a)
    assert len(key) == 12 and int(key, 16) >= 0
    assert (
        config_key({**a, SEED_KEY: 1})
        == key
        == config_key({"prior.num_modes": 10, "loss.alpha": 0.95, "train.seed": 3})
    )
    assert config_key({**a, "loss.alpha": 0.5}) != key and config_key({**a, "prior.num_modes": 1}) != key
    assert config_label({**a, SEED_KEY: 1}) == "loss.alpha=0.95 prior.num_modes=10"
    assert seed_columns(a, 9) == {"seed": 9, "config_key": key, "config_label": "loss.alpha=0.95 prior.num_modes=10"}


def test_trial_config_sets_train_seed_base_plus_index():
    space = SearchSpace.from_dict(GRID)
    base = RunConfig.from_dict({**RunConfig().to_dict(), "train": {**RunConfig().to_dict()["train"], "seed": 7}})
    params = {"loss.alpha": 0.5, "prior.num_modes": 25}
    cfgs = [trial_config(space, base, {**params, SEED_KEY: i}) for i in range(3)]
    assert [c.train.seed for c, _, _ in cfgs] == [7, 8, 9]
    assert all(own == params and c.loss.alpha == 0.5 and c.prior.num_modes == 25 for c, own, _ in cfgs)
    assert [cols["seed"] for _, _, cols in cfgs] == [7, 8, 9] and len({cols["config_key"] for _, _, cols in cfgs}) == 1
    cfg, own, cols = trial_config(space, base, params)  # an unseeded trial trains with the base seed
    assert cfg.train.seed == 7 and cols["seed"] == 7 and own == params
    # every seed and configuration is evaluated alike: the same eval section (eval.seed picks the images
    # and the attacks' random starts), whatever the training seed or the sampled params
    other, _, _ = trial_config(space, base, {"loss.alpha": 0.1, "prior.num_modes": 1, SEED_KEY: 2})
    assert all(c.eval == base.eval for c, _, _ in cfgs) and other.eval == base.eval


def test_seeded_grid_runs_every_point_s_times_and_optuna_sees_the_mean(tmp_path):
    db = tmp_path / "optuna.db"
    searcher = build_searcher(
        SearchSpace.from_dict(GRID), make_objective("scalar"), study_db=db, study_name="g", seeds=3
    )
    assert isinstance(searcher, OptunaSearcher) and searcher.groups.seeds == 3 and not searcher.packed
    configs = [searcher.suggest(f"t{i}") for i in range(12)]
    by_point: dict = {}
    for c in configs:
        by_point.setdefault((c["loss.alpha"], c["prior.num_modes"]), []).append(c[SEED_KEY])
    assert {p: sorted(s) for p, s in by_point.items()} == {
        p: [0, 1, 2] for p in [(0.5, 1), (0.5, 25), (0.95, 1), (0.95, 25)]
    }
    assert searcher.suggest("t0") == configs[0]  # asked again (a restored trial): the same unit
    scores = {}
    for i, c in enumerate(configs):
        scores.setdefault((c["loss.alpha"], c["prior.num_modes"]), []).append(0.1 * i)
        searcher.on_trial_result(f"t{i}", {"score": 99.0, FINAL_KEY: 1.0, "training_iteration": 1})  # ignored
        searcher.on_trial_complete(f"t{i}", {"score": 0.1 * i, FINAL_KEY: 1.0})
        if i == 1:  # a configuration with only some seeds ended is not told yet
            assert load_study(db, "g").trials[0].state == optuna.trial.TrialState.RUNNING
    study = load_study(db, "g")
    assert len(study.trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for t in study.trials:
        point = (t.params["loss.alpha"], t.params["prior.num_modes"])
        assert t.value == pytest.approx(statistics.fmean(scores[point]))
        assert [v[0] for v in t.user_attrs["seed_values"]] == pytest.approx(scores[point])


def test_a_failed_or_pruned_seed_decides_the_configuration(tmp_path):
    db = tmp_path / "optuna.db"
    space = SearchSpace.from_dict({"loss.alpha": {"type": "uniform", "low": 0.1, "high": 1.0}})
    searcher = build_searcher(space, make_objective("pareto"), study_db=db, study_name="p", seeds=2)
    ids = [f"t{i}" for i in range(6)]
    configs = [searcher.suggest(t) for t in ids]
    assert configs[0]["loss.alpha"] == configs[1]["loss.alpha"] != configs[2]["loss.alpha"]
    assert [c[SEED_KEY] for c in configs] == [0, 1, 0, 1, 0, 1]
    done = {"robustness": 0.6, "fid": 10.0, FINAL_KEY: 1.0}
    searcher.on_trial_complete("t0", done)
    searcher.on_trial_complete("t1", {"robustness": 0.8, "fid": 30.0, FINAL_KEY: 1.0})
    searcher.on_trial_complete("t2", done)
    searcher.on_trial_complete("t3", None, error=True)
    searcher.on_trial_complete("t4", {"val_loss": 1.0})  # stopped early
    searcher.on_trial_complete("t5", done)
    searcher.on_trial_complete("t5", done)  # reported twice: counted once
    states = [t.state for t in load_study(db, "p").trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED]
    assert load_study(db, "p").trials[0].values == pytest.approx([0.7, 20.0])  # per-objective means


def test_packed_seeds_cover_the_grid_s_times_and_tell_means(tmp_path):
    db = tmp_path / "optuna.db"
    searcher = build_searcher(
        SearchSpace.from_dict(GRID),
        make_objective("scalar"),
        study_db=db,
        study_name="pk",
        pack_size=3,
        total=4,
        seeds=2,
    )
    assert isinstance(searcher, OptunaSearcher) and searcher.packed
    packs = [searcher.suggest(f"p{i}") for i in range(3)]
    assert [len(p[PACK_KEY]) for p in packs] == [3, 3, 2] and searcher.suggest("p3") == "FINISHED"
    members = [m for p in packs for m in p[PACK_KEY]]
    by_point: dict = {}
    for m in members:
        by_point.setdefault((m["loss.alpha"], m["prior.num_modes"]), []).append(m[SEED_KEY])
    assert len(by_point) == 4 and all(sorted(s) == [0, 1] for s in by_point.values())
    values: dict = {}
    for i, p in enumerate(packs):
        report = {FINAL_KEY: 1.0}
        for k, m in enumerate(p[PACK_KEY]):
            report[member_metric(k, "score")] = 0.1 * (3 * i + k)
            values.setdefault((m["loss.alpha"], m["prior.num_modes"]), []).append(0.1 * (3 * i + k))
        searcher.on_trial_complete(f"p{i}", report)
    study = load_study(db, "pk")
    assert len(study.trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for t in study.trials:
        assert t.value == pytest.approx(statistics.fmean(values[(t.params["loss.alpha"], t.params["prior.num_modes"])]))


def test_unseeded_searchers_hand_out_no_seed_key(tmp_path):
    space = SearchSpace.from_dict(GRID)
    plain = build_searcher(space, make_objective("scalar"), study_db=tmp_path / "o.db", study_name="a")
    assert SEED_KEY not in plain.suggest("a")
    packed = build_searcher(
        space, make_objective("scalar"), study_db=tmp_path / "o.db", study_name="b", pack_size=2, total=4
    )
    assert all(SEED_KEY not in m for m in packed.suggest("b")[PACK_KEY])
