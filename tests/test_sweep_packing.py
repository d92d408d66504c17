"""Several trials per GPU: the settings are validated before any trial, packs are grouped correctly."""

import math
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch

from radae.objective import FID_WEIGHT, FINAL_KEY, make_objective
from radae.store.studies import load_study
from radae.sweep.cli import main
from radae.sweep.definition import DefinitionError, parse_definition, with_resources
from radae.sweep.packing import ResourceError, TrialResources, cap_gpu_memory, member_ids, member_metric
from radae.sweep.searcher import OptunaSearcher, build_searcher
from radae.sweep.space import SearchSpace

DEFINITION = Path(__file__).parents[1] / "sweeps" / "alpha_modes.yaml"

GRID = {
    "loss.alpha": {"type": "grid", "values": [0.5, 0.9, 0.95]},
    "prior.num_modes": {"type": "grid", "values": [1, 25]},
}
TPE = {
    "loss.alpha": {"type": "uniform", "low": 0.1, "high": 1.0},
    "adv.method": {"type": "choice", "values": ["fgsm", "pgd"]},
    "adv.pgd_steps": {"type": "int", "low": 2, "high": 10},
}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"gpus_per_trial": 0}, "gpus_per_trial"),
        ({"gpus_per_trial": -0.25}, "gpus_per_trial"),
        ({"gpus_per_trial": 1.5}, "gpus_per_trial"),
        ({"gpus_per_trial": math.nan}, "gpus_per_trial"),
        ({"gpus_per_trial": "0.5"}, "gpus_per_trial"),
        ({"gpus_per_trial": True}, "gpus_per_trial"),
        ({"pack_size": 0}, "pack_size"),
        ({"pack_size": 2.5}, "pack_size"),
        ({"pack_size": True}, "pack_size"),
        ({"pack_noise": "mixed"}, "pack_noise"),
    ],
)
def test_bad_settings_are_named(kwargs, field):
    with pytest.raises(ResourceError, match=field):
        TrialResources(**kwargs)


def test_concurrency_and_ray_resources_follow_the_gpu_share():
    quarter = TrialResources(gpus_per_trial=0.25)
    assert quarter.trials_per_gpu == 4 and TrialResources(gpus_per_trial=0.3).trials_per_gpu == 3
    assert quarter.concurrency(cluster_gpus=2, use_gpu=True) == 8
    assert TrialResources(gpus_per_trial=0.1).concurrency(cluster_gpus=1, use_gpu=True) == 10  # no float floor error
    assert quarter.concurrency(cluster_gpus=0, use_gpu=False) == 1  # CPU-only: one at a time unless asked
    assert quarter.concurrency(cluster_gpus=2, use_gpu=True, requested=3) == 3
    assert quarter.tune_resources("direct", use_gpu=True) == {"cpu": 1, "gpu": 0.25}
    assert quarter.tune_resources("direct", use_gpu=False) == {"cpu": 1, "gpu": 0}
    assert quarter.tune_resources("torch", use_gpu=True) == {"cpu": 0.01}  # the Train worker holds the GPU
    # Tune function + Train worker = exactly 1 CPU per trial: N CPUs train N trials at once.
    assert quarter.worker_resources(1.0, use_gpu=True) == {"CPU": 0.99, "GPU": 0.25}
    assert quarter.worker_resources(1.0, use_gpu=False) == {"CPU": 0.99}
    assert (
        quarter.tune_resources("torch", use_gpu=False)["cpu"] + quarter.worker_resources(1.0, use_gpu=False)["CPU"]
        == 1.0
    )
    packed = TrialResources(pack_size=4)
    assert [packed.tune_samples(n) for n in (1, 4, 5, 30)] == [1, 1, 2, 8]
    assert member_ids("ab12", 3) == ["ab12-m0", "ab12-m1", "ab12-m2"] and member_metric(2, "fid") == "pack.m2.fid"


def test_memory_cap_without_cuda_is_a_logged_no_op():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: see test_memory_cap_limits_allocations_on_cuda")
    assert "no-op" in cap_gpu_memory(0.25)
    assert "no GPU memory cap" in cap_gpu_memory(1.0)


# The GPU memory-cap test is in tests/test_gpu_memory_cap.py (importable without Ray/Optuna).


def definition(**top):
    raw = {
        "objective": {"mode": "scalar"},
        "base": {"data.name": "mnist", "train.epochs": 2},
        "space": dict(GRID),
        **top,
    }
    return parse_definition(raw)


def test_definition_settings_and_smoke_override():
    defn = definition(gpus_per_trial=0.25, pack_size=4)
    assert defn.resources == TrialResources(gpus_per_trial=0.25, pack_size=4)
    assert defn.describe()["sweep.pack_size"] == 4 and defn.num_samples == 6
    assert definition().resources == TrialResources()
    smoke = parse_definition(
        {
            "objective": {"mode": "scalar"},
            "space": GRID,
            "pack_size": 4,
            "smoke": {"pack_size": 2, "gpus_per_trial": 0.5},
        },
        smoke=True,
    )
    assert smoke.resources == TrialResources(gpus_per_trial=0.5, pack_size=2)
    cli = with_resources(defn, {"pack_size": 2, "gpus_per_trial": None})  # the CLI's value wins, None keeps
    assert cli.resources == TrialResources(gpus_per_trial=0.25, pack_size=2)
    with pytest.raises(DefinitionError, match="model.name must be rae"):
        with_resources(definition(), {"pack_size": 2}, {"model.name": "vae"})


@pytest.mark.parametrize(
    ("top", "base", "space", "message"),
    [
        ({"gpus_per_trial": 2}, {}, GRID, "gpus_per_trial"),
        ({"pack_size": 0}, {}, GRID, "pack_size"),
        ({"pack_size": 2}, {"model.name": "vae"}, GRID, "model.name must be rae"),
        ({"pack_size": 2}, {"model.arch": "conv"}, GRID, "BatchNorm"),
        ({"pack_size": 2}, {}, {"adv.method": {"type": "grid", "values": ["fgsm", "pgd"]}}, "adv.method"),
        ({"pack_size": 2, "gpus_per_trial": 0.5, "bogus": 1}, {}, GRID, "bogus"),
    ],
)
def test_bad_definitions_fail_before_any_trial(top, base, space, message):
    raw = {
        "objective": {"mode": "scalar"},
        "base": {"data.name": "mnist", **base},
        "space": space,
        "num_samples": 2,
        **top,
    }
    with pytest.raises(DefinitionError, match=message):
        parse_definition(raw)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpus-per-trial", "0"], "gpus_per_trial"),
        (["--gpus-per-trial", "1.01"], "gpus_per_trial"),
        (["--pack-size", "0"], "pack_size"),
        (["--pack-size", "4", "--set", "model.name=beta-vae"], "model.name must be rae"),
    ],
)
def test_cli_rejects_bad_settings_before_contacting_services(dead_services, capsys, argv, message):
    assert main(DEFINITION, ["--smoke-test", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "unreachable" not in err


def test_grid_packs_cover_the_grid_exactly_once(tmp_path):
    space = SearchSpace.from_dict(GRID)
    searcher = build_searcher(
        space, make_objective("scalar"), study_db=tmp_path / "o.db", study_name="g", pack_size=4, total=6
    )
    assert isinstance(searcher, OptunaSearcher) and searcher.packed
    packs = [searcher.suggest(t)["pack"] for t in ("a", "b")]
    assert [len(p) for p in packs] == [4, 2]  # the last pack takes what is left
    assert sorted((p["loss.alpha"], p["prior.num_modes"]) for pack in packs for p in pack) == sorted(
        (a, k) for a in (0.5, 0.9, 0.95) for k in (1, 25)
    )
    assert searcher.suggest("c") == "FINISHED"
    assert searcher.suggest("a")["pack"] == packs[0]  # asking again returns the same pack


def test_members_share_the_architecture_and_are_told_their_own_values(tmp_path):
    space = SearchSpace.from_dict(TPE)
    db = tmp_path / "o.db"
    searcher = build_searcher(
        space, make_objective("scalar"), study_db=db, study_name="t", seed=5, pack_size=3, total=8
    )
    packs = {t: searcher.suggest(t)["pack"] for t in ("a", "b", "c")}
    assert [len(p) for p in packs.values()] == [3, 3, 2]
    for pack in packs.values():  # shape-fixing keys come from the first member, the rest is sampled
        assert len({(p["adv.method"], p["adv.pgd_steps"]) for p in pack}) == 1
        assert len({p["loss.alpha"] for p in pack}) == len(pack)
    # a: evaluated, member 2 diverged; b: stopped early by the scheduler; c: failed.
    result = {FINAL_KEY: 1.0, "score": 0.7, member_metric(0, "score"): 0.4, member_metric(1, "score"): 0.7}
    searcher.on_trial_result("a", {"val_loss": 1.0, "epoch": 1, "training_iteration": 1})
    searcher.on_trial_complete("a", result)
    searcher.on_trial_complete("b", {"val_loss": 2.0, "epoch": 1})
    searcher.on_trial_complete("c", None, error=True)
    S = optuna.trial.TrialState
    trials = load_study(db, "t").trials
    assert [t.state for t in trials] == [S.COMPLETE, S.COMPLETE, S.FAIL, S.PRUNED, S.PRUNED, S.PRUNED, S.FAIL, S.FAIL]
    assert [t.value for t in trials[:2]] == [0.4, 0.7]
    assert trials[1].params["loss.alpha"] == packs["a"][1]["loss.alpha"]  # member k is Optuna trial k of its pack


def test_pareto_members_get_both_values(tmp_path):
    space = SearchSpace.from_dict(GRID)
    searcher = build_searcher(
        space, make_objective("pareto"), study_db=tmp_path / "o.db", study_name="p", pack_size=2, total=2
    )
    searcher.suggest("a")
    searcher.on_trial_complete(
        "a",
        {
            FINAL_KEY: 1.0,
            **{member_metric(k, "robustness"): 0.5 + k / 10 for k in (0, 1)},
            **{member_metric(k, "fid"): 10.0 + k for k in (0, 1)},
        },
    )
    assert [t.values for t in load_study(tmp_path / "o.db", "p").trials] == [[0.5, 10.0], [0.6, 11.0]]


def test_driver_rows_name_each_member():
    from radae.config import RunConfig
    from radae.sweep.runner import _trial_members
    from radae.sweep.trial import SweepContext

    ctx = SweepContext(
        sweep_id="s",
        base=RunConfig(),
        space=GRID,
        objective="scalar",
        fid_weight=FID_WEIGHT,
        storage={},
        tracking_uri="x",
        experiment="x",
        parent_run_id="p",
        work_dir="/tmp",
    )
    pack = [{"loss.alpha": 0.5, "prior.num_modes": 1}, {"loss.alpha": 0.9, "prior.num_modes": 25}]
    trial = SimpleNamespace(
        trial_id="t9",
        config={"pack": pack},
        last_result={"epoch": 1, "val_loss": 1.5, "m0.val_loss": 1.5, "m1.val_loss": 2.5, "m1.lr": 1e-3},
    )
    members = _trial_members(ctx, trial)
    assert [m[0] for m in members] == ["t9-m0", "t9-m1"] and [m[1] for m in members] == pack
    assert members[0][2] == {"val_loss": 1.5} and members[1][2] == {"val_loss": 2.5, "lr": 1e-3}
    assert members[1][3] == {"pack_trial": "t9", "pack_member": 1, "pack_size": 2}
    plain = SimpleNamespace(
        trial_id="t1", config={"loss.alpha": 0.5, "prior.num_modes": 1}, last_result={"val_loss": 1.0}
    )
    assert _trial_members(ctx, plain) == [("t1", {"loss.alpha": 0.5, "prior.num_modes": 1}, {"val_loss": 1.0}, {})]


def test_pack_summary_is_the_best_member_per_objective_metric():
    from radae.sweep.shapes import pack_summary

    finals = [{"robustness": 0.6, "fid": 20.0, "score": 0.1}, None, {"robustness": 0.7, "fid": 30.0, "score": 0.3}]
    assert pack_summary(finals, make_objective("scalar", 0.1)) == {
        "pack.m0.score": 0.1,
        "pack.m2.score": 0.3,
        "score": 0.3,
    }
    pareto = pack_summary(finals, make_objective("pareto", 0.1))
    assert pareto["robustness"] == 0.7 and pareto["fid"] == 20.0 and "pack.m1.fid" not in pareto


@pytest.mark.slow
@pytest.mark.parametrize("share", [0.5, 1.0])
def test_fractional_gpu_trials_share_one_gpu_in_ray(tmp_path, share, monkeypatch):
    """A local Ray with one logical GPU: at 0.5 GPU per trial two trials hold GPU 0 at once, at 1.0 they queue."""
    # Read by the processes ray.init starts (GCS, raylet, dashboard), not only the workers:
    # no usage report to a non-loopback address, no auth token left for later `ray job submit`.
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    import shutil
    import tempfile

    import ray
    from ray import tune

    def gpu_probe(config):  # nested, so Ray pickles it by value (tests/ is not importable in workers)
        import os
        import time

        t0 = time.time()
        time.sleep(1.5)
        tune.report(
            {
                "gpu_ids": ",".join(map(str, ray.get_gpu_ids())),
                "cvd": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                "t0": t0,
                "t1": time.time(),
            }
        )

    res = TrialResources(gpus_per_trial=share)
    temp = tempfile.mkdtemp(prefix="rpk-", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    ray.init(
        address="local",
        num_cpus=2,
        num_gpus=1,
        include_dashboard=False,
        _temp_dir=temp,
        runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}},
    )
    try:
        concurrency = res.concurrency(ray.cluster_resources()["GPU"], use_gpu=True)
        assert concurrency == (2 if share == 0.5 else 1)
        tuner = tune.Tuner(
            tune.with_resources(gpu_probe, res.tune_resources("direct", use_gpu=True)),
            param_space={"i": tune.grid_search([0, 1])},
            tune_config=tune.TuneConfig(max_concurrent_trials=2),
            run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
        )
        rows = [r.metrics for r in tuner.fit()]
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    assert [r["gpu_ids"] for r in rows] == ["0", "0"] and [r["cvd"] for r in rows] == ["0", "0"]
    overlap = max(r["t0"] for r in rows) < min(r["t1"] for r in rows)
    assert overlap == (share == 0.5)
