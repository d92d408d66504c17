"""A sweep on two Ray nodes (``cluster/start_stack.sh --nodes 2``: a head and a second node on this host, all
on loopback, one CPU each), then the second node lost mid-trial.

``ray job submit`` runs the smoke sweep (2 configurations x 2 seeds, ``--executor direct``,
``--concurrency 2``): the rows name the node that ran each trial, and both nodes appear; the second node,
whose processes have a cache of their own, evaluated with the sweep's FID network fetched from S3. While a
later trial trains on the second node, that node's raylet is killed by PID (SIGKILL, as a machine
lost, and every process under it): the trial is retried on the head and resumes from its last
checkpoint in S3. The sweep finishes with one row per trial, 0 lost.
"""

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from ray.job_submission import JobStatus, JobSubmissionClient

from cluster import stack
from radae.fid import file_sha256
from radae.store import procfs, results
from radae.store.settings import StorageSettings

from .conftest import assert_stopped, live_env, mnist_dir, stack_descendants
from .test_sweep_e2e import progress, raw_objects, submit, wait_for

pytestmark = pytest.mark.e2e
# Epochs of each trial, on 6,000 images: long enough to kill a trial between two epochs.
EPOCHS = 4


def test_a_sweep_uses_both_nodes_and_survives_losing_one(tmp_path, measurements):
    if mnist_dir() is None:
        pytest.skip("real MNIST not found (set RADAE_DATA_DIR or put it in ../shared/data/mnist)")
    state_dir = tmp_path / "stack"
    state = stack.start(state_dir, num_cpus=1, nodes=2)
    live = {"state": state, "env": live_env(state_dir), "state_dir": state_dir, "work": tmp_path / "sweeps"}
    try:
        nodes = {n["name"]: n for n in json.loads((state_dir / "nodes.json").read_text())}
        head, second = nodes["head"], nodes["node2"]
        assert head["node_id"] != second["node_id"]
        not_loopback = [str(item) for item in stack.stack_listeners(state_dir) if not item.loopback]
        assert not not_loopback, not_loopback

        sweep = f"nodes-{uuid.uuid4().hex[:6]}"
        extra = ["--executor", "direct", "--concurrency", "2", "--set", f"train.epochs={EPOCHS}"]
        extra += ["--set", "data.train_limit=6000"]
        proc = submit(live, sweep, extra, wait=False, submission_id=sweep)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        settings = StorageSettings.from_env(live["env"])
        sweep_state = live["work"] / sweep / "state"

        def rows():
            return {r["trial_id"]: r for r in results.read_sweep(settings, sweep).to_pylist()}

        # Both nodes ran a trial to its end: each node's id in a row.
        wait_for(
            lambda: {head["node_id"], second["node_id"]} <= {r.get("node_id") for r in rows().values()},
            "a finished trial on each node",
            timeout=900,
            interval=2,
        )
        # The second node scored FID with the sweep's network fetched from S3 into its own cache (its processes
        # do not see the head's): that cache holds exactly the file the rows' checksum names, and no network
        # built there. Its data came from the job's working dir and the pinned data dir, not the driver's files.
        on_second = [r for r in rows().values() if r.get("node_id") == second["node_id"]]
        checksums = {r["fid_network_sha256"] for r in on_second}
        assert len(checksums) == 1 and None not in checksums, checksums
        features = Path(second["cache_dir"]) / "radae" / "features"
        networks = sorted(p.relative_to(features).as_posix() for p in features.rglob("*.pt"))
        assert networks == [f"sweeps/{next(iter(checksums))}.pt"], networks
        assert file_sha256(features / networks[0]) == next(iter(checksums))

        # A later trial training on the second node (a worker process under its raylet), between two epochs.
        def training_on_second():
            on_second = set(procfs.descendants(second["raylet_pid"]))
            done = rows()
            for trial, (epoch, pid) in progress(sweep_state).items():
                if trial not in done and 1 <= epoch < EPOCHS and pid in on_second:
                    return trial
            return None

        lost = wait_for(training_on_second, "a trial past its first epoch on the second node", timeout=900)
        killed_after_epoch = progress(sweep_state)[lost][0]
        # The node is lost as a machine is: its raylet killed by PID, then every process that ran under it
        # (a worker left alone outlives its raylet for a while and would go on training).
        under = {p: procfs.start_time(p) for p in procfs.descendants(second["raylet_pid"]) if p != second["raylet_pid"]}
        os.kill(second["raylet_pid"], signal.SIGKILL)
        killed_at = time.time()
        for pid, started in under.items():
            if started is not None and procfs.start_time(pid) == started:
                os.kill(pid, signal.SIGKILL)

        client = JobSubmissionClient(live["env"]["RAY_DASHBOARD"], headers=stack.auth_headers(live["env"]))
        status = wait_for(
            lambda: (
                (s := client.get_job_status(sweep)) in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED) and s
            ),
            "the sweep's end",
            timeout=1200,
            interval=2,
        )
        assert status == JobStatus.SUCCEEDED, client.get_job_logs(sweep)[-6000:]
        final = rows()
        assert len(final) == 4 == len(raw_objects(settings, sweep)), sorted(final)
        assert all(r["status"] == "completed" for r in final.values())
        # Retried on the head from the checkpoint of the epoch it was killed after: training went on from there.
        assert final[lost]["node_id"] == head["node_id"]
        assert killed_after_epoch <= final[lost]["resumed_from_epoch"] < EPOCHS, final[lost]
        measurements["two_nodes"] = {
            "rows": len(final),
            "rows_per_node": {
                name: sum(r["node_id"] == n["node_id"] for r in final.values()) for name, n in nodes.items()
            },
            "second_node_fid_network": networks[0],
            "lost_trial_killed_after_epoch": killed_after_epoch,
            "lost_trial_resumed_from_epoch": final[lost]["resumed_from_epoch"],
            "seconds_from_node_loss_to_sweep_end": round(time.time() - killed_at, 1),
        }
    finally:
        descendants = stack_descendants(state)
        stack.stop(state_dir)
        assert_stopped(state, descendants)
