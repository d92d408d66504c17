"""End to end: `ray job submit -- python sweeps/alpha_modes.py --smoke-test` on the local stack, real MNIST.

Checks every trial finished, the bucket holds exactly one Parquet row per trial, MLflow one nested
run per trial with its artifacts, the Optuna study every trial, and no credential anywhere. The
fault test kills a trial's worker mid-training and the driver mid-sweep, then resumes with
``--resume``: every trial has exactly one row and no finished trial is run again.
"""

import hashlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

from cluster import stack
from radae.store import results
from radae.store.settings import StorageSettings
from radae.store.studies import load_study
from radae.store.tracking import PARENT_TAG, ROLE_TAG, SWEEP_TAG, Tracker
from radae.sweep.definition import load_definition

from .conftest import ROOT, mnist_dir

pytestmark = pytest.mark.e2e
RAY = str(Path(sys.executable).parent / "ray")


def sweep_args(live, sweep_id, extra=()):
    work = live["work"] / sweep_id
    return [
        "--sweep-id",
        sweep_id,
        "--data-dir",
        str(mnist_dir()),
        "--study-db",
        str(work / "optuna.db"),
        "--work-dir",
        str(work / "trials"),
        "--state-dir",
        str(work / "state"),
        *extra,
    ]


def submit(
    live,
    sweep_id,
    extra=(),
    *,
    wait=True,
    submission_id=None,
    timeout=480,
    script="sweeps/alpha_modes.py",
    script_args=("--smoke-test",),
):
    """``ray job submit`` of ``script`` (its smoke test by default) on the live stack, as a user submits it."""
    cmd = [
        RAY,
        "job",
        "submit",
        "--address",
        live["env"]["RAY_DASHBOARD"],
        "--working-dir",
        ".",
        "--runtime-env",
        "cluster/runtime_env.yaml",
    ]
    if submission_id:
        cmd += ["--submission-id", submission_id]
    if not wait:
        cmd.append("--no-wait")
    cmd += ["--", "python", script, *script_args, *sweep_args(live, sweep_id, extra)]
    return subprocess.run(cmd, cwd=ROOT, env=live["env"], capture_output=True, text=True, timeout=timeout)


def wait_for(predicate, what, timeout=300, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def settings_of(live):
    return StorageSettings.from_env(live["env"])


def raw_objects(settings, sweep_id):
    client = settings.boto3_client()
    prefix = settings.key("results", f"sweep={sweep_id}") + "/"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=settings.bucket, Prefix=prefix).get("Contents", [])]
    return {k: client.get_object(Bucket=settings.bucket, Key=k)["Body"].read() for k in keys}


def test_smoke_sweep_end_to_end(live_stack, measurements):
    live, sweep = live_stack, f"e2e-{uuid.uuid4().hex[:6]}"
    defn = load_definition(ROOT / "sweeps" / "alpha_modes.yaml", smoke=True)
    t0 = time.time()
    proc = submit(live, sweep, ["--concurrency", "2"])
    measurements["e2e_sweep_seconds"] = round(time.time() - t0, 1)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"python {Path(sys.executable).parent}" in proc.stdout  # the job ran the project's venv python

    settings = settings_of(live)
    table = results.read_sweep(settings, sweep)
    n = defn.num_samples * defn.seeds  # 2 configurations x 2 seeds
    assert defn.seeds == 2 and n == 4 and table.num_rows == n and len(raw_objects(settings, sweep)) == n
    rows = table.to_pylist()
    assert all(r["status"] == "completed" for r in rows) and len({r["trial_id"] for r in rows}) == n
    grid = {(p["loss.alpha"], p["prior.num_modes"]) for p in defn.space.grid_points()}
    assert {(r["param.loss.alpha"], r["param.prior.num_modes"]) for r in rows} == grid
    # Seeds: each configuration S times, with train.seed = base + 0..S-1, under one config_key.
    configs: dict = {}
    for r in rows:
        configs.setdefault(r["config_key"], []).append(r)
    assert len(configs) == len(grid) and all(len(c) == defn.seeds for c in configs.values())
    for same in configs.values():
        assert sorted(r["seed"] for r in same) == [0, 1] and all(r["config.train.seed"] == r["seed"] for r in same)
        assert len({(r["param.loss.alpha"], r["param.prior.num_modes"], r["config_label"]) for r in same}) == 1
        assert (
            same[0]["config_label"]
            == f"loss.alpha={same[0]['param.loss.alpha']} prior.num_modes={same[0]['param.prior.num_modes']}"
        )
        assert same[0]["metric.score"] != same[1]["metric.score"]  # different seeds, different models
    # Per-image values beside the rows: every trial attacked the same images (eval.seed, not train.seed).
    images = results.read_images(settings, sweep, as_pandas=True)
    assert set(images["trial_id"]) == {r["trial_id"] for r in rows}
    attacked = images[images["name"] == "max_damage_msssim_paper_recx_recxa_l3"].groupby("trial_id")["image"]
    assert len({tuple(sorted(v)) for _, v in attacked}) == 1
    per_trial = images[images["name"] == "robustness"].groupby("trial_id")["value"].mean()
    assert all(abs(per_trial[r["trial_id"]] - r["metric.robustness"]) < 1e-9 for r in rows)
    # One FID feature network for the whole sweep: stored with its results, the same checksum in every row.
    fid_key = settings.key("fid", f"sweep={sweep}", "mnist", "feature_net.pt")
    stored_net = settings.boto3_client().get_object(Bucket=settings.bucket, Key=fid_key)["Body"].read()
    assert {r["fid_network_sha256"] for r in rows} == {hashlib.sha256(stored_net).hexdigest()}
    # Both cores train: with --concurrency 2 on the 2-CPU cluster two trials' training overlaps.
    spans = sorted((r["train_started_at"], r["train_finished_at"]) for r in rows)
    assert all(a < b for a, b in spans)
    assert any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1)), spans
    ray_logs = "".join(
        p.read_text(errors="replace")
        for p in Path(live["state"]["ray_temp_dir"]).rglob("*")
        if p.is_file() and p.suffix in (".log", ".out", ".err")
    )
    assert "WorkerGroupStartupTimeoutError" not in proc.stdout + proc.stderr + ray_logs
    for r in rows:
        assert r["config.loss.alpha"] == r["param.loss.alpha"] and r["config.data.name"] == "mnist"
        assert r["config.train.epochs"] == 2 and r["metric.epochs_trained"] == 2
        assert all(math.isfinite(r[f"metric.{k}"]) for k in ("score", "robustness", "fid"))
        assert 0.0 <= r["metric.robustness"] <= 1.0 and r["wall_seconds"] > 0
        assert r["executor"] == "torch" and r["resumed_from_epoch"] == 0
    # Every trial checkpointed through Ray Train storage in the bucket (run name <sweep>-<trial>).
    ray_keys = [
        o["Key"]
        for o in settings.boto3_client().list_objects_v2(
            Bucket=settings.bucket, Prefix=settings.key("ray", "train", sweep), MaxKeys=1000
        )["Contents"]
    ]
    assert all(
        any(f"/{sweep}-{r['trial_id']}/checkpoint_" in k and k.endswith("checkpoint.pt") for k in ray_keys)
        for r in rows
    )

    tracker = Tracker(live["env"]["MLFLOW_TRACKING_URI"])
    (parent,) = tracker.client.search_runs(
        [tracker.experiment_id], f"tags.`{SWEEP_TAG}` = '{sweep}' and tags.`{ROLE_TAG}` = 'sweep'"
    )
    runs = tracker.trial_runs(sweep)
    assert len(runs) == n and parent.info.status == "FINISHED"
    by_trial = {r["trial_id"]: r for r in rows}
    for run in runs:
        assert run.data.tags[PARENT_TAG] == parent.info.run_id and run.info.status == "FINISHED"
        row = by_trial[run.data.tags["radae.trial_id"]]
        assert run.data.tags["radae.seed"] == str(row["seed"]) == run.data.params["train.seed"]
        assert (
            run.data.tags["radae.config_key"] == row["config_key"]
            and run.data.tags["radae.config_label"] == row["config_label"]
        )
        assert run.data.tags["radae.fid_network_sha256"] == row["fid_network_sha256"]
        assert run.data.params["loss.alpha"] in {str(a) for a, _ in grid} and "eval.fid_samples" in run.data.params
        history = tracker.client.get_metric_history(run.info.run_id, "val_loss")
        assert [m.step for m in history] == [1, 2]
        probe = tracker.client.get_metric_history(run.info.run_id, "probe_robustness_paper")
        assert [m.step for m in probe] == [1, 2] and all(0 <= m.value <= 1 for m in probe)  # robustness per epoch
        names = {
            a.path for d in ("checkpoint", "eval", "train") for a in tracker.client.list_artifacts(run.info.run_id, d)
        }
        assert "checkpoint/checkpoint.pt" in names and "train/samples.png" in names
        assert any(p.startswith("eval/") and p.endswith(".json") for p in names), names
        assert any(p.startswith("eval/") and p.endswith(".png") for p in names), names

    report = settings.boto3_client().list_objects_v2(
        Bucket=settings.bucket, Prefix=settings.key("reports", f"sweep={sweep}")
    )
    assert {o["Key"].rsplit("/", 1)[1] for o in report["Contents"]} == {
        "pareto.csv",
        "pareto.parquet",
        "pareto.png",
        "sensitivity.png",
        "report.html",
    }
    assert {a.path for a in tracker.client.list_artifacts(parent.info.run_id, "report")} >= {
        "report/pareto.png",
        "report/pareto.csv",
        "report/report.html",
    }

    # Optuna: one trial per configuration, told the mean score over its seeds.
    study = load_study(live["work"] / sweep / "optuna.db", sweep)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * len(grid)
    means = sorted(statistics.fmean(r["metric.score"] for r in same) for same in configs.values())
    assert sorted(t.value for t in study.trials) == pytest.approx(means)

    secret = live["env"]["RADAE_S3_SECRET_ACCESS_KEY"]
    assert "AWS_SECRET_ACCESS_KEY" not in live["env"]  # the credentials reach the sweep only as RADAE_S3_*
    assert secret not in proc.stdout + proc.stderr
    assert all(secret not in json.dumps(run.data.params) + json.dumps(run.data.tags) for run in runs)
    # The access key too: the S3 server (SeaweedFS) must not write either into its data dir or log.
    scanned = secret_hits(live, sweep, [secret.encode(), live["env"]["RADAE_S3_ACCESS_KEY_ID"].encode()])
    measurements["secret_scan"] = {
        "objects": scanned["objects"],
        "files": scanned["files"],
        "hits": len(scanned["hits"]),
    }
    assert scanned["objects"] > 20 and scanned["files"] > 20 and not scanned["hits"], scanned["hits"]


def secret_hits(live, sweep, secrets: list[bytes]) -> dict:
    """Every place the sweep wrote to, scanned for each of ``secrets``: each bucket object (results, reports,
    Ray Tune/Train storage and its pickled experiment state, MLflow artifacts), the MLflow database,
    the Optuna database, the trial folders, the sweep's state files, the Ray session (job logs,
    worker logs, runtime resources), the stack's service logs and the S3 server's data dir. Only the stack's
    private files (``env`` and the S3 server's ``identities.json``, mode 600, where it keeps the credentials)
    are left out."""
    settings = settings_of(live)
    client = settings.boto3_client()
    hits, objects = [], 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        for obj in page.get("Contents", []):
            objects += 1
            body = client.get_object(Bucket=settings.bucket, Key=obj["Key"])["Body"].read()
            if any(secret in body for secret in secrets):
                hits.append(f"s3://{settings.bucket}/{obj['Key']}")
    roots = [live["state_dir"], Path(live["state"]["s3_data_dir"]), live["work"] / sweep]
    roots.append(Path(live["state"]["ray_temp_dir"]))
    files = [p for root in roots for p in Path(root).rglob("*") if p.is_file() and not p.is_symlink()]
    files = sorted({p for p in files if p not in {live["state_dir"] / name for name in stack.PRIVATE_FILES}})
    for path in files:
        try:
            data = path.read_bytes()
            if any(secret in data for secret in secrets):
                hits.append(str(path))
        except OSError:
            continue
    return {"objects": objects, "files": len(files), "hits": hits}


def progress(state_dir, exclude=()):
    """{trial: (epoch, pid)} of the trials that finished at least one epoch."""
    out = {}
    for path in Path(state_dir).glob("*.progress"):
        if path.stem not in exclude:
            try:
                info = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            out[path.stem] = (info["epoch"], info["pid"])
    return out


def test_worker_kill_and_driver_interrupt_then_resume(live_stack, measurements):
    live, sweep = live_stack, f"fault-{uuid.uuid4().hex[:6]}"
    state_dir = live["work"] / sweep / "state"
    # One configuration x the smoke's two seeds: two trials, one Optuna trial told once both ended.
    extra = ["--num-samples", "1", "--concurrency", "1", "--set", "train.epochs=4", "--set", "data.train_limit=6000"]
    settings = settings_of(live)
    t0 = time.time()
    proc = submit(live, sweep, extra, wait=False, submission_id=f"{sweep}-a")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # 1. Kill the first trial's training worker (its PID from the trial's pid file) mid-training.
    first, (epoch, pid) = wait_for(lambda: next(iter(progress(state_dir).items()), None), "a first epoch")
    assert epoch < 4 and json.loads((state_dir / f"{first}.pid").read_text())["pid"] == pid
    os.kill(pid, signal.SIGKILL)
    # 2. Tune retries the trial, which resumes from its last checkpoint and completes.
    row = wait_for(lambda: results.read_row(settings, sweep, first), "the retried trial's row", interval=1)
    assert row["status"] == "completed" and row["resumed_from_epoch"] >= 1

    # 3. Interrupt the driver while the second trial trains.
    second, _ = wait_for(lambda: next(iter(progress(state_dir, exclude={first}).items()), None), "the second trial")
    os.kill(int((state_dir / "driver.pid").read_text()), signal.SIGKILL)
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(live["env"]["RAY_DASHBOARD"], headers=stack.auth_headers(live["env"]))
    wait_for(
        lambda: client.get_job_status(f"{sweep}-a") in (JobStatus.FAILED, JobStatus.STOPPED),
        "the killed job",
        interval=0.5,
    )
    before = {r["trial_id"]: r["finished_at"] for r in results.read_sweep(settings, sweep).to_pylist()}
    assert first in before and second not in before
    fid_key = settings.key("fid", f"sweep={sweep}", "mnist", "feature_net.pt")
    fid_stored = settings.boto3_client().head_object(Bucket=settings.bucket, Key=fid_key)["LastModified"]

    # 4. Resume: the sweep completes, finished trials are not run again, the interrupted one resumes.
    proc = submit(live, sweep, [*extra, "--resume"], submission_id=f"{sweep}-b")
    measurements["fault_test_seconds"] = round(time.time() - t0, 1)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    table = results.read_sweep(settings, sweep)
    rows = {r["trial_id"]: r for r in table.to_pylist()}
    assert table.num_rows == 2 == len(rows) == len(raw_objects(settings, sweep))
    assert all(r["status"] == "completed" for r in rows.values())
    assert all(rows[t]["finished_at"] == finished for t, finished in before.items())  # not repeated
    assert rows[second]["resumed_from_epoch"] >= 1
    assert sorted(r["seed"] for r in rows.values()) == [0, 1] and len({r["config_key"] for r in rows.values()}) == 1
    # --resume reused the stored FID network (not rebuilt): one checksum, the object untouched.
    assert settings.boto3_client().head_object(Bucket=settings.bucket, Key=fid_key)["LastModified"] == fid_stored
    assert len({r["fid_network_sha256"] for r in rows.values()}) == 1 and None not in {
        r["fid_network_sha256"] for r in rows.values()
    }
    study = load_study(live["work"] / sweep / "optuna.db", sweep)
    assert len(study.trials) == 1 and study.trials[0].state == optuna.trial.TrialState.COMPLETE
    assert study.trials[0].value == pytest.approx(statistics.fmean(r["metric.score"] for r in rows.values()))
    assert len(Tracker(live["env"]["MLFLOW_TRACKING_URI"]).trial_runs(sweep)) == 2
