"""End to end: the alpha-modes smoke sweep packed two configurations per trial, real MNIST, the local stack.

Runs ``sweeps/alpha_modes.py --smoke-test --pack-size 2 --executor direct`` against the stack's Ray
head (2 Tune trials, 4 configurations trained with ``train_packed``) and checks each configuration
kept its own results: one Parquet row, one nested MLflow run with its own per-epoch metrics and
artifacts, its own evaluation and its own Optuna trial. Then ``--resume`` of the finished sweep
leaves every row byte-for-byte unchanged and creates no run.
"""

import math
import subprocess
import sys
import time
import uuid

import optuna
import pytest

from radae.store import results
from radae.store.studies import load_study
from radae.store.tracking import PARENT_TAG, ROLE_TAG, SWEEP_TAG, TRIAL_TAG, Tracker
from radae.sweep.definition import load_definition

from .conftest import ROOT
from .test_sweep_e2e import raw_objects, settings_of, sweep_args

pytestmark = pytest.mark.e2e


def run_script(live, sweep, extra=()):
    cmd = [
        sys.executable,
        "sweeps/alpha_modes.py",
        "--smoke-test",
        "--executor",
        "direct",
        "--pack-size",
        "2",
        "--concurrency",
        "2",
        "--ray-address",
        live["env"]["RAY_ADDRESS"],
        *sweep_args(live, sweep, extra),
    ]
    return subprocess.run(cmd, cwd=ROOT, env=live["env"], capture_output=True, text=True, timeout=400)


def test_packed_sweep_keeps_each_configuration_separate(live_stack, measurements):
    live, sweep = live_stack, f"pack-{uuid.uuid4().hex[:6]}"
    defn = load_definition(ROOT / "sweeps" / "alpha_modes.yaml", smoke=True)
    t0 = time.time()
    proc = run_script(live, sweep)
    measurements["packed_sweep_seconds"] = round(time.time() - t0, 1)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert "packs of 2" in proc.stdout and "no GPU in this sweep" in proc.stderr  # the CPU no-op is logged

    settings = settings_of(live)
    rows = results.read_sweep(settings, sweep).to_pylist()
    n = defn.num_samples * defn.seeds  # 2 configurations x 2 seeds, in packs of 2
    assert n == 4 and len(rows) == n and len(raw_objects(settings, sweep)) == n
    grid = [(p["loss.alpha"], p["prior.num_modes"]) for p in defn.space.grid_points()]
    points = [(r["param.loss.alpha"], r["param.prior.num_modes"]) for r in rows]
    assert sorted(points) == sorted(grid * defn.seeds)  # every point once per seed
    assert sorted((r["config_key"], r["seed"]) for r in rows) == sorted(
        (k, s) for k in {r["config_key"] for r in rows} for s in (0, 1)
    )
    assert len({r["fid_network_sha256"] for r in rows}) == 1 and rows[0]["fid_network_sha256"] is not None
    packs: dict[str, list[dict]] = {}
    for r in rows:
        packs.setdefault(r["pack_trial"], []).append(r)
    assert sorted(len(p) for p in packs.values()) == [2, 2]
    for trial, members in packs.items():
        assert sorted(r["trial_id"] for r in members) == [f"{trial}-m0", f"{trial}-m1"]
        assert sorted(r["pack_member"] for r in members) == [0, 1] and {r["pack_size"] for r in members} == {2}
    for r in rows:
        assert r["status"] == "completed" and r["executor"] == "direct"
        assert (
            r["config.loss.alpha"] == r["param.loss.alpha"]
            and r["config.prior.num_modes"] == r["param.prior.num_modes"]
        )
        assert r["config.train.out_dir"].endswith(r["trial_id"]) and r["metric.epochs_trained"] == 2
        assert all(math.isfinite(r[f"metric.{k}"]) for k in ("score", "robustness", "fid"))
        assert not any(
            k.startswith("metric.m1.") or k.startswith("metric.pack.") for k in r
        )  # no other member's values
    # Separate evaluations: four configurations, four different results.
    assert (
        len({round(r["metric.robustness"], 9) for r in rows}) == n
        and len({round(r["metric.fid"], 6) for r in rows}) == n
    )

    tracker = Tracker(live["env"]["MLFLOW_TRACKING_URI"])
    (parent,) = tracker.client.search_runs(
        [tracker.experiment_id], f"tags.`{SWEEP_TAG}` = '{sweep}' and tags.`{ROLE_TAG}` = 'sweep'"
    )
    runs = {run.data.tags[TRIAL_TAG]: run for run in tracker.trial_runs(sweep)}
    assert set(runs) == {r["trial_id"] for r in rows}
    histories = []
    for r in rows:
        run = runs[r["trial_id"]]
        assert run.data.tags[PARENT_TAG] == parent.info.run_id and run.info.status == "FINISHED"
        assert run.data.tags["radae.pack_trial"] == r["pack_trial"] and run.data.params["loss.alpha"] == str(
            r["param.loss.alpha"]
        )
        assert run.data.metrics["score"] == pytest.approx(r["metric.score"])
        history = tracker.client.get_metric_history(run.info.run_id, "val_loss")
        assert [m.step for m in history] == [1, 2]
        histories.append(tuple(m.value for m in history))
        names = {
            a.path for d in ("checkpoint", "eval", "train") for a in tracker.client.list_artifacts(run.info.run_id, d)
        }
        assert "checkpoint/checkpoint.pt" in names and "train/metrics.jsonl" in names
    assert len(set(histories)) == n

    study = load_study(live["work"] / sweep / "optuna.db", sweep)
    # Every member informs the sampler: one Optuna trial per configuration, told the mean over its seeds.
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * defn.num_samples
    means = {}
    for r in rows:
        means.setdefault(r["config_key"], []).append(r["metric.score"])
    assert sorted(t.value for t in study.trials) == pytest.approx(sorted(sum(v) / len(v) for v in means.values()))

    before = raw_objects(settings, sweep)
    t0 = time.time()
    again = run_script(live, sweep, ["--resume"])
    measurements["packed_resume_seconds"] = round(time.time() - t0, 1)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert raw_objects(settings, sweep) == before and len(tracker.trial_runs(sweep)) == n
