"""MLflow bookkeeping: one parent per sweep, one nested run per trial, found again, no secrets."""

import pytest

from radae.config import RunConfig
from radae.store.tracking import PARENT_TAG, ROLE_TAG, TRIAL_TAG, Tracker


@pytest.fixture
def tracker(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "unit", artifact_location=str(tmp_path / "artifacts"))


def test_parent_and_nested_runs_are_found_again(tracker, tmp_path, monkeypatch):
    secret = "sEcReT-value-for-test-9"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    parent = tracker.parent_run("sw", {"sweep.name": "x", "storage": f"key {secret}"})
    assert tracker.parent_run("sw", {}) == parent  # a resumed sweep reuses its parent
    cfg = RunConfig()
    params = {**cfg.flat(), "data.data_dir": f"/data/{secret}"}
    run = tracker.trial_run(parent, "sw", "t1", params, {"param.loss.alpha": 0.5})
    again = tracker.trial_run(parent, "sw", "t1", params, {"param.loss.alpha": 0.5})  # a retried trial
    other = tracker.trial_run(parent, "sw", "t2", params, {})
    assert again == run and other != run
    runs = tracker.trial_runs("sw")
    assert sorted(r.data.tags[TRIAL_TAG] for r in runs) == ["t1", "t2"]
    stored = tracker.client.get_run(run)
    assert stored.data.tags[PARENT_TAG] == parent and stored.data.tags[ROLE_TAG] == "trial"
    assert stored.data.params["loss.alpha"] == str(cfg.loss.alpha) and len(stored.data.params) == len(params)
    assert secret not in repr(stored.data.params) and stored.data.params["data.data_dir"] == "/data/***"
    assert secret not in repr(tracker.client.get_run(parent).data.params)

    tracker.log_metrics(run, {"val_loss": 2.0, "epoch": 1, "note": "x", "nan": float("nan")}, step=1)
    tracker.log_metrics(run, {"val_loss": 1.5, "epoch": 2}, step=2)
    history = tracker.client.get_metric_history(run, "val_loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.5)]
    assert "nan" not in tracker.client.get_run(run).data.metrics
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "metrics.json").write_text("{}")
    tracker.log_artifacts(run, tmp_path / "eval", "eval")
    assert [a.path for a in tracker.client.list_artifacts(run, "eval")] == ["eval/metrics.json"]
    tracker.end(run)
    assert tracker.client.get_run(run).info.status == "FINISHED"


def test_retry_completes_params_of_a_run_created_before_a_crash(tracker):
    """A trial killed between creating its run and logging its params gets them on the retry."""
    from radae.store.tracking import SWEEP_TAG

    parent = tracker.parent_run("sw-crash", {})
    tags = {SWEEP_TAG: "sw-crash", TRIAL_TAG: "t1", ROLE_TAG: "trial", PARENT_TAG: parent}
    orphan = tracker.client.create_run(tracker.experiment_id, tags=tags).info.run_id  # the crashed attempt
    params = RunConfig().flat()
    assert tracker.trial_run(parent, "sw-crash", "t1", params, {}) == orphan
    assert len(tracker.client.get_run(orphan).data.params) == len(params)
    moved = {**params, "train.out_dir": "/elsewhere"}  # e.g. --resume with another --work-dir
    assert tracker.trial_run(parent, "sw-crash", "t1", moved, {}) == orphan
    assert tracker.client.get_run(orphan).data.params["train.out_dir"] == str(params["train.out_dir"])


def test_runs_table_set_up_for_comparing(tracker):
    """The experiment opens on its runs, trials are named by their values, the compare view lists the columns."""
    import json

    from radae.store.tracking import KIND, KIND_TAG, VIEW_TAG_PREFIX, compare_url, compared_metrics, run_label

    assert tracker.client.get_experiment(tracker.experiment_id).tags[KIND_TAG] == KIND
    assert run_label({"prior.num_modes": 10, "loss.alpha": 0.95, "seed": 0}) == "K=10 alpha=0.95 seed=0"
    parent = tracker.parent_run("cmp", {})
    run = tracker.trial_run(parent, "cmp", "t1", {}, {"param.prior.num_modes": 25, "param.adv.method": "pgd"})
    assert tracker.client.get_run(run).info.run_name == "K=25 method=pgd"
    url = tracker.compare_view("cmp", parent, ["loss.alpha", "prior.num_modes"], compared_metrics((1, 3)))
    key = url.rsplit("viewStateShareKey=", 1)[1].split("&")[0]
    assert url.endswith("&workflowType=machine_learning")
    assert url.startswith(f"#/experiments/{tracker.experiment_id}/runs?")
    state = json.loads(tracker.client.get_experiment(tracker.experiment_id).tags[VIEW_TAG_PREFIX + key])
    assert state["selectedColumns"][:2] == ["params.`loss.alpha`", "params.`prior.num_modes`"]
    assert (
        "metrics.`robustness`" in state["selectedColumns"]
        and "metrics.`latent_msssim_paper_xt_recxa_l3_mean`" in state["selectedColumns"]
    )
    # the trials as a flat list, best objective first (a metric sort and a filter un-nest them in the UI)
    assert state["searchFilter"] == f"tags.`mlflow.parentRunId` = '{parent}'"
    assert state["orderByKey"] == "metrics.`score`" and state["orderByAsc"] is False
    assert tracker.client.get_run(parent).data.tags["radae.compare_url"] == url
    assert compare_url(tracker, "cmp") == f"{tracker.tracking_uri}/{url}"
    assert compare_url(tracker, "no-such-sweep") is None
    fid_view = tracker.compare_view("cmp", parent, [], ["fid"], sort_by="fid", ascending=True)
    key = fid_view.rsplit("viewStateShareKey=", 1)[1].split("&")[0]
    state = json.loads(tracker.client.get_experiment(tracker.experiment_id).tags[VIEW_TAG_PREFIX + key])
    assert state["orderByKey"] == "metrics.`fid`" and state["orderByAsc"] is True
    # two seeds of one configuration get two names
    names = {
        tracker.client.get_run(
            tracker.trial_run(parent, "cmp", f"s{seed}", {}, {"param.prior.num_modes": 1, "radae.seed": seed})
        ).info.run_name
        for seed in (0, 1)
    }
    assert names == {"K=1 seed=0", "K=1 seed=1"}


def test_many_and_long_params_and_many_metrics_are_logged(tracker):
    """MLflow's client batches above its per-request limits (100 params, 1,000 metrics) and its store cuts a
    value above 6,000 characters: 250 params with one long value and 1,200 metrics all arrive."""
    from mlflow.utils.validation import MAX_METRICS_PER_BATCH, MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

    parent = tracker.parent_run("sw-big", {})
    params = {f"p{i:03d}": i for i in range(250)} | {"long": "x" * 7000}
    assert len(params) > 2 * MAX_PARAMS_TAGS_PER_BATCH
    run = tracker.trial_run(parent, "sw-big", "t1", params, {})
    stored = tracker.client.get_run(run).data.params
    assert len(stored) == len(params) and stored["p249"] == "249"
    assert stored["long"] == "x" * MAX_PARAM_VAL_LENGTH == "x" * 6000
    metrics = {f"m{i:04d}": float(i) for i in range(1200)}
    assert len(metrics) > MAX_METRICS_PER_BATCH
    tracker.log_metrics(run, metrics, step=3)
    logged = tracker.client.get_run(run).data.metrics
    assert len(logged) == 1200 and logged["m1199"] == 1199.0


def test_tags_are_mlflows_own_names(tracker):
    """The nesting and run-name tags are MLflow's constants (the UI nests and names runs by them)."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

    parent = tracker.parent_run("sw-tags", {})
    run = tracker.trial_run(parent, "sw-tags", "t1", {}, {"param.seed": 3})
    info = tracker.client.get_run(run)
    assert PARENT_TAG == MLFLOW_PARENT_RUN_ID and info.data.tags[MLFLOW_PARENT_RUN_ID] == parent
    assert info.data.tags[MLFLOW_RUN_NAME] == info.info.run_name == "seed=3"
    assert tracker.client.get_run(parent).info.run_name == "sweep-sw-tags"
