"""End to end: `ray job submit -- python sweeps/search.py --smoke-test` (TPE + ASHA) on the local stack, real MNIST.

The search smoke definition (sweeps/search.yaml, ``smoke``) samples its configurations with TPE
(seeded) and runs them one at a time under ASHA with a rung after epoch 1, so a trial whose
epoch-1 validation loss is in the worse part of those seen at the rung is stopped there. Checks:
the job exits 0; at least one trial was stopped and one ran to its evaluation; every trial has
exactly one Parquet row (status ``pruned`` or ``completed``, no duplicate object); the Optuna
study records the stopped ones as PRUNED (never COMPLETE with a half-trained value) and the
others as COMPLETE with the row's score; the MLflow runs of stopped trials end KILLED.

The trials run with ``--executor direct`` (training in the Tune trial itself): the same TPE +
ASHA path as the default ``torch`` executor, without a Ray Train worker group per trial, which
takes about a minute to start on a loaded 2-core machine (test_sweep_e2e covers that executor).
"""

import math
import time
import uuid

import optuna
import pytest

from radae.store import results
from radae.store.studies import load_study
from radae.store.tracking import TRIAL_TAG, Tracker
from radae.sweep.definition import load_definition

from .conftest import ROOT
from .test_sweep_e2e import raw_objects, settings_of, submit

pytestmark = pytest.mark.e2e


def test_search_smoke_prunes_with_asha_and_records_each_trial_once(live_stack, measurements):
    live, sweep = live_stack, f"search-{uuid.uuid4().hex[:6]}"
    defn = load_definition(ROOT / "sweeps" / "search.yaml", smoke=True)
    assert defn.scheduler["type"] == "asha" and defn.objective.name == "scalar"
    t0 = time.time()
    proc = submit(
        live,
        sweep,
        timeout=900,
        script="sweeps/search.py",
        script_args=("--smoke-test", "--executor", "direct", "--concurrency", "1"),
    )
    measurements["search_smoke_seconds"] = round(time.time() - t0, 1)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    # One row per trial, one object per row.
    settings = settings_of(live)
    rows = results.read_sweep(settings, sweep).to_pylist()
    n = defn.num_samples * defn.seeds
    assert len(rows) == n and len({r["trial_id"] for r in rows}) == n and len(raw_objects(settings, sweep)) == n
    by_status = {s: [r for r in rows if r["status"] == s] for s in ("pruned", "completed")}
    measurements["search_smoke_trials"] = {s: len(v) for s, v in by_status.items()}
    assert len(by_status["pruned"]) + len(by_status["completed"]) == n, [r["status"] for r in rows]
    assert by_status["pruned"] and by_status["completed"], "the smoke search must both stop and finish trials"
    for r in by_status["completed"]:
        assert r["metric.epochs_trained"] == defn.base["train.epochs"] and math.isfinite(r["metric.score"])
    for r in by_status["pruned"]:
        assert r.get("metric.score") is None and r.get("mlflow_run_id") is None

    # Optuna: one trial per row (matched by the sampled values), PRUNED exactly for the stopped ones.
    study = load_study(live["work"] / sweep / "optuna.db", sweep)
    keys = sorted(defn.space.params)
    trials = {tuple(t.params[k] for k in keys): t for t in study.trials}
    assert len(trials) == len(study.trials) == n
    for r in rows:
        trial = trials[tuple(r[f"param.{k}"] for k in keys)]
        if r["status"] == "pruned":
            assert trial.state == optuna.trial.TrialState.PRUNED, (r["trial_id"], trial.state)
        else:
            assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == pytest.approx(r["metric.score"])

    # MLflow: the runs of stopped trials end KILLED, the others FINISHED.
    runs = {run.data.tags[TRIAL_TAG]: run for run in Tracker(live["env"]["MLFLOW_TRACKING_URI"]).trial_runs(sweep)}
    for r in rows:
        if r["trial_id"] in runs:
            expected = "KILLED" if r["status"] == "pruned" else "FINISHED"
            assert runs[r["trial_id"]].info.status == expected, (r["trial_id"], runs[r["trial_id"]].info.status)
    assert {r["trial_id"] for r in by_status["completed"]} <= set(runs)
