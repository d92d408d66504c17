"""A full stack stop and start keeps every object, and a sweep the stop interrupted finishes with ``--resume``.

The test runs a stack of its own (its state dir is stopped and started again, which gives every
service new ports and the S3 server new credentials). A finished sweep stays readable afterwards
byte for byte: every bucket object it wrote (rows, report, Ray Tune/Train state, checkpoints,
the FID network, MLflow artifacts), its rows as the same table, and its checkpoints through the
restarted MLflow server. A second sweep, stopped with the stack mid-training, resumes after the
start with one row per trial: 0 lost, 0 duplicated.
"""

import hashlib
import time
import uuid

import pytest

from cluster import stack
from radae.store import results
from radae.store.settings import StorageSettings
from radae.store.tracking import Tracker

from .conftest import assert_stopped, live_env, mnist_dir, stack_descendants
from .test_sweep_e2e import progress, raw_objects, submit, wait_for

pytestmark = pytest.mark.e2e
# One configuration x the smoke's two seeds: two trials per sweep.
ONE_CONFIG = ["--num-samples", "1", "--concurrency", "1"]


def bucket_objects(settings: StorageSettings) -> dict[str, str]:
    """Every object of the bucket: key -> SHA-256 of its bytes."""
    client = settings.boto3_client(timeout=30)
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=settings.bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"]] = hashlib.sha256(body).hexdigest()
    return out


def artifact_digests(tracker: Tracker, sweep: str, folder) -> dict[str, str]:
    """``{run id/checkpoint/checkpoint.pt: SHA-256}`` of each trial run's checkpoint, downloaded through MLflow."""
    out = {}
    for run in tracker.trial_runs(sweep):
        local = tracker.client.download_artifacts(run.info.run_id, "checkpoint/checkpoint.pt", str(folder))
        with open(local, "rb") as handle:
            out[f"{run.info.run_id}/checkpoint/checkpoint.pt"] = hashlib.sha256(handle.read()).hexdigest()
    return out


def test_stack_stop_and_start_keeps_every_object_and_resumes_an_interrupted_sweep(tmp_path, measurements):
    if mnist_dir() is None:
        pytest.skip("real MNIST not found (set RADAE_DATA_DIR or put it in ../shared/data/mnist)")
    state_dir = tmp_path / "stack"
    state = stack.start(state_dir, num_cpus=2)
    live = {"state": state, "env": live_env(state_dir), "state_dir": state_dir, "work": tmp_path / "sweeps"}
    try:
        # 1. A finished sweep.
        done = f"kept-{uuid.uuid4().hex[:6]}"
        proc = submit(live, done, ONE_CONFIG)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        settings = StorageSettings.from_env(live["env"])
        kept = bucket_objects(settings)
        table = results.read_sweep(settings, done)
        assert table.num_rows == 2
        report = settings.key("reports", f"sweep={done}", "report.html")
        assert report in kept and any("/checkpoint" in key for key in kept), sorted(kept)
        checkpoints = artifact_digests(Tracker(live["env"]["MLFLOW_TRACKING_URI"]), done, tmp_path / "before")
        assert len(checkpoints) == 2

        # 2. A second sweep, stopped with the whole stack while its first trial trains.
        cut = f"cut-{uuid.uuid4().hex[:6]}"
        longer = [*ONE_CONFIG, "--set", "train.epochs=4", "--set", "data.train_limit=6000"]
        proc = submit(live, cut, longer, wait=False, submission_id=f"{cut}-a")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        cut_state = live["work"] / cut / "state"
        first, (epoch, _) = wait_for(lambda: next(iter(progress(cut_state).items()), None), "a first epoch")
        assert epoch < 4
        old_s3_key = live["env"]["RADAE_S3_ACCESS_KEY_ID"]
        t0 = time.time()
        descendants = stack_descendants(state)
        stack.stop(state_dir)
        assert_stopped(state, descendants)
        stop_seconds = time.time() - t0
    except BaseException:
        stack.stop(state_dir)
        raise

    # 3. Start again on the same state dir (new ports, new credentials; same S3 data dir and databases).
    t0 = time.time()
    state = stack.start(state_dir, num_cpus=2)
    start_seconds = time.time() - t0
    live.update(state=state, env=live_env(state_dir))
    try:
        settings = StorageSettings.from_env(live["env"])
        assert settings.access_key != old_s3_key and state["s3_data_dir"] == str(state_dir / "s3-data")
        after = bucket_objects(settings)
        changed = sorted(key for key, digest in kept.items() if after.get(key) != digest)
        assert not changed, f"{len(changed)} of {len(kept)} objects lost or changed: {changed[:10]}"
        assert results.read_sweep(settings, done).equals(table)
        tracker = Tracker(live["env"]["MLFLOW_TRACKING_URI"])
        assert artifact_digests(tracker, done, tmp_path / "after") == checkpoints

        # 4. The interrupted sweep finishes with --resume: one row per trial, none lost or duplicated.
        before = {r["trial_id"]: r for r in results.read_sweep(settings, cut).to_pylist()}
        proc = submit(live, cut, [*longer, "--resume"], submission_id=f"{cut}-b")
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        rows = {r["trial_id"]: r for r in results.read_sweep(settings, cut).to_pylist()}
        assert len(rows) == 2 == len(raw_objects(settings, cut)) and first in rows
        assert all(r["status"] == "completed" for r in rows.values())
        assert all(rows[t]["finished_at"] == r["finished_at"] for t, r in before.items())  # not run again
        assert sorted(r["seed"] for r in rows.values()) == [0, 1]
        assert len(tracker.trial_runs(cut)) == 2
        measurements["stack_restart"] = {
            "objects_kept": len(kept),
            "objects_changed": len(changed),
            "stop_seconds": round(stop_seconds, 1),
            "start_seconds": round(start_seconds, 1),
            "interrupted_trial_resumed_from_epoch": rows[first]["resumed_from_epoch"],
            "rows_after_resume": len(rows),
        }
    finally:
        descendants = stack_descendants(state)
        stack.stop(state_dir)
        assert_stopped(state, descendants)
