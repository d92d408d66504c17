"""Optuna bookkeeping: trials stopped before their evaluation are PRUNED, the study is persisted."""

import optuna
import pytest

from radae.objective import FINAL_KEY, make_objective
from radae.store.studies import load_study
from radae.sweep.searcher import build_searcher
from radae.sweep.space import SearchSpace

SPACE = SearchSpace.from_dict(
    {
        "loss.alpha": {"type": "uniform", "low": 0.1, "high": 1.0},
        "prior.num_modes": {"type": "choice", "values": [1, 5, 10]},
    }
)


def test_stopped_trials_are_pruned_finished_ones_complete(tmp_path):
    db = tmp_path / "optuna.db"
    searcher = build_searcher(SPACE, make_objective("scalar"), study_db=db, study_name="s1", seed=3)
    for trial in ("a", "b", "c"):
        params = searcher.suggest(trial)
        assert 0.1 <= params["loss.alpha"] <= 1.0 and params["prior.num_modes"] in (1, 5, 10)
        # Per-epoch results have no objective yet: the searcher must accept them silently.
        searcher.on_trial_result(trial, {"val_loss": 2.0, "epoch": 1, "training_iteration": 1})
    searcher.on_trial_complete("a", {"score": 0.61, FINAL_KEY: 1.0, "training_iteration": 3})
    searcher.on_trial_complete("b", {"val_loss": 1.9, "epoch": 1, "training_iteration": 1})  # stopped by ASHA
    searcher.on_trial_complete("c", None, error=True)
    states = [t.state for t in load_study(db, "s1").trials]  # read back from the SQLite file
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL]
    assert load_study(db, "s1").trials[0].value == pytest.approx(0.61)


def test_pareto_mode_and_grid(tmp_path):
    db = tmp_path / "optuna.db"
    searcher = build_searcher(SPACE, make_objective("pareto"), study_db=db, study_name="p")
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"robustness": 0.7, "fid": 20.0, FINAL_KEY: 1.0})
    searcher.suggest("b")
    searcher.on_trial_complete("b", {"val_loss": 1.0})
    study = load_study(db, "p")
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert study.trials[0].values == [0.7, 20.0] and study.trials[1].state == optuna.trial.TrialState.PRUNED

    grid = SearchSpace.from_dict(
        {"loss.alpha": {"type": "grid", "values": [0.5, 0.95]}, "prior.num_modes": {"type": "grid", "values": [1, 25]}}
    )
    searcher = build_searcher(grid, make_objective("scalar"), study_db=db, study_name="g")
    seen = set()
    for i in range(4):
        params = searcher.suggest(f"g{i}")
        seen.add((params["loss.alpha"], params["prior.num_modes"]))
        searcher.on_trial_complete(f"g{i}", {"score": 0.1 * i, FINAL_KEY: 1.0})
    assert seen == {(0.5, 1), (0.5, 25), (0.95, 1), (0.95, 25)}  # the grid sampler enumerates every point


def test_saved_searcher_resumes_its_units_and_study(tmp_path):
    """Tuner.restore path: a searcher restored from its checkpoint hands out the same units, and
    tells the study (reloaded from the SQLite file) once per configuration, as before the save."""
    db, ckpt = tmp_path / "optuna.db", tmp_path / "searcher.pkl"
    grid = SearchSpace.from_dict({"loss.alpha": {"type": "grid", "values": [0.5, 0.95]}})
    searcher = build_searcher(grid, make_objective("scalar"), study_db=db, study_name="r", seeds=2, total=2)
    first = [searcher.suggest(t) for t in ("a", "b", "c")]
    searcher.on_trial_complete("a", {"score": 0.2, FINAL_KEY: 1.0})
    searcher.save(str(ckpt))

    restored = build_searcher(grid, make_objective("scalar"), study_db=db, study_name="r", seeds=2, total=2)
    restored.restore(str(ckpt))
    assert [restored.suggest(t) for t in ("a", "b", "c")] == first  # running trials keep their configurations
    assert restored.suggest("d")["loss.alpha"] == first[2]["loss.alpha"] and restored.suggest("e") == "FINISHED"
    restored.on_trial_complete("a", {"score": 99.0, FINAL_KEY: 1.0})  # re-reported after restore: counted once
    restored.on_trial_complete("b", {"score": 0.4, FINAL_KEY: 1.0})
    restored.on_trial_complete("c", {"score": 0.1, FINAL_KEY: 1.0})
    restored.on_trial_complete("d", {"val_loss": 1.0})  # stopped early
    trials = load_study(db, "r").trials
    assert len(trials) == 2 and trials[0].value == pytest.approx(0.3)
    assert trials[0].user_attrs["seed_values"] == [[0.2], [0.4]]
    assert trials[1].state == optuna.trial.TrialState.PRUNED
