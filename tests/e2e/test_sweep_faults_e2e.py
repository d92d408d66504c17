"""Faults during a real sweep on the local stack: the S3 endpoint away for a while, the MLflow server
killed and restarted, a second driver on the running sweep id, a corrupt object in its results prefix.

The sweep (2 trials of 4 epochs, ``--executor direct``, real MNIST) reaches S3 through a loopback
TCP proxy (``tests/tcp_proxy.py``, an outage without stopping the S3 server): after
the first epoch the proxy resets every connection for 10 s, then relays again. Once training has
gone on, the MLflow server is killed and started again on its port with the same SQLite store.
While the sweep runs, a second driver on its id is refused and changes nothing, and a corrupt
``.parquet`` object is put in the sweep's results prefix. The sweep's output names each fault (the
S3 endpoint and the MLflow server unreachable, then reachable again); its final read names the
corrupt object and stops (exit 2); the report script names it too; once it is removed, ``--resume``
completes the sweep without training again. Afterwards: one Parquet row per trial (no row lost or
duplicated), no trial restarted (training never stopped), every per-epoch metric in MLflow, and the
figures in ``runs/sweep-e2e.json`` (docs/sweeps.md).
"""

import re
import subprocess
import sys
import threading
import time
import uuid

import optuna
import pytest
from tcp_proxy import TcpProxy

from cluster import stack
from radae.store import results
from radae.store.studies import load_study
from radae.store.tracking import Tracker

from .conftest import ROOT
from .test_sweep_e2e import progress, raw_objects, settings_of, sweep_args, wait_for

pytestmark = pytest.mark.e2e
EPOCHS = 4


def driver_cmd(live, sweep, endpoint, extra=()):
    # One seed per configuration: the smoke definition repeats each over 2 seeds; these tests count trials.
    args = [
        "--num-samples",
        "2",
        "--seeds",
        "1",
        "--concurrency",
        "1",
        "--executor",
        "direct",
        "--endpoint",
        endpoint,
        "--set",
        f"train.epochs={EPOCHS}",
        "--set",
        "data.train_limit=6000",
        *extra,
    ]
    return [
        sys.executable,
        "sweeps/alpha_modes.py",
        "--smoke-test",
        "--ray-address",
        live["env"]["RAY_ADDRESS"],
        *sweep_args(live, sweep, args),
    ]


def test_s3_outage_mlflow_restart_and_a_second_driver(live_stack, measurements):
    live, sweep = live_stack, f"outage-{uuid.uuid4().hex[:6]}"
    settings = settings_of(live)
    state_dir = live["work"] / sweep / "state"
    proxy = TcpProxy(live["state"]["ports"]["s3"])
    output: list[str] = []
    t0 = time.time()
    driver = subprocess.Popen(
        driver_cmd(live, sweep, proxy.endpoint),
        cwd=ROOT,
        env=live["env"],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    reader = threading.Thread(target=lambda: output.extend(driver.stdout), daemon=True)
    reader.start()
    faults = measurements["faults"] = {}  # recorded as measured, also when an assertion fails
    try:
        # 1. The S3 endpoint goes away for 10 s after the first epoch, then comes back.
        first, (epoch, _) = wait_for(
            lambda: next(iter(progress(state_dir).items()), None), "a first epoch", timeout=720
        )
        proxy.down()
        time.sleep(10)
        proxy.back_up()
        faults["s3_outage_seconds"], faults["s3_connections_reset"] = 10, proxy.refused

        # 2. A second driver on the running sweep id (--resume) is refused and overwrites nothing.
        before = raw_objects(settings, sweep)
        pid_file = (state_dir / "driver.pid").read_text()
        second = subprocess.run(
            driver_cmd(live, sweep, live["env"]["RADAE_S3_ENDPOINT"], ["--resume"]),
            cwd=ROOT,
            env=live["env"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second.returncode == 2 and "being run by another driver" in second.stderr, second.stdout + second.stderr
        assert f"pid {driver.pid}" in second.stderr and (state_dir / "driver.pid").read_text() == pid_file
        after = raw_objects(settings, sweep)  # the running sweep may add its own rows meanwhile
        assert {k: after.get(k) for k in before} == before
        faults["second_driver_refused"] = 1

        # 3. The MLflow server is killed once training has gone on past the outage, and restarted 5 s later.
        wait_for(
            lambda: any(t != first or e > epoch for t, (e, _) in progress(state_dir).items()),
            "an epoch after the outage",
            timeout=420,
        )
        stack.restart_mlflow(live["state_dir"], down_for=5)
        assert driver.poll() is None, "the sweep ended before the MLflow restart: the fault was not mid-sweep"
        faults["mlflow_restarts"] = 1

        # 4. A corrupt object appears in the sweep's results prefix while it runs.
        bad = results.trial_path(settings, sweep, "corrupt-injected")
        settings.boto3_client().put_object(
            Bucket=settings.bucket, Key=bad.split("/", 1)[1], Body=b"PAR1 not a parquet file"
        )
        assert driver.poll() is None, "the sweep ended before the corrupt object was put: the fault was not mid-sweep"
        faults["corrupt_objects"] = 1

        rc = driver.wait(timeout=900)
    finally:
        if driver.poll() is None:
            driver.kill()
        proxy.close()
        reader.join(timeout=10)
        text = "".join(output)
        # Shown by pytest when the test fails: the fault messages and errors, then the tail.
        print("".join(ln for ln in output if re.search(r"reachable|[Ee]rror", ln))[-6000:], text[-3000:])
    (live["work"] / sweep / "driver-output.txt").write_text(text)  # kept with the test's temporary files
    # The trials finished; the driver's final read of the sweep names the corrupt object and stops.
    assert rc == 2 and f"error: results object s3://{bad} is corrupt or unreadable (not a Parquet row" in text, text[
        -6000:
    ]

    # Each fault named in the sweep's output (the driver's lease heartbeat and row reads, the trials' MLflow calls).
    s3_at = re.escape(f"S3 endpoint {proxy.endpoint}")
    # pyarrow's calls (rows) fail with OSError, boto3's (the lease) with botocore's connection errors.
    s3_down = re.findall(
        rf"{s3_at} unreachable (.+?): (?:OSError|ConnectionClosedError|EndpointConnectionError): ", text
    )
    s3_back = re.findall(rf"{s3_at} reachable again after (\d+) s", text)
    mlflow_at = rf"MLflow tracking server http://127\.0\.0\.1:{live['state']['ports']['mlflow']}/?"
    mlflow_down = re.findall(rf"{mlflow_at} unreachable calling (\w+): ", text)
    mlflow_back = re.findall(rf"{mlflow_at} reachable again after (\d+) s", text)
    faults.update(
        s3_unreachable_messages=len(s3_down),
        s3_reachable_again_after_s=[int(x) for x in s3_back],
        s3_calls_named=sorted({w.split(" s3://")[0] for w in s3_down}),
        mlflow_unreachable_messages=len(mlflow_down),
        mlflow_reachable_again_after_s=[int(x) for x in mlflow_back],
        mlflow_calls_named=sorted(set(mlflow_down)),
    )
    assert s3_down and s3_back, text[-6000:]
    assert mlflow_down and mlflow_back, text[-6000:]

    # Reading the sweep names the object: the library and the report script; the trial rows are intact.
    with pytest.raises(results.ResultsError, match=re.escape(f"results object s3://{bad} is corrupt")):
        results.read_sweep(settings, sweep)
    report = subprocess.run(
        [
            sys.executable,
            "dashboards/sweep_report.py",
            sweep,
            "--mlflow-uri",
            "",
            "--out",
            str(live["work"] / sweep / "report.html"),
        ],
        cwd=ROOT,
        env=live["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode != 0 and f"s3://{bad} is corrupt" in report.stderr, report.stdout + report.stderr[-4000:]
    trial_keys = sorted(set(raw_objects(settings, sweep)) - {bad.split("/", 1)[1]})
    kept = [results.read_row(settings, sweep, k.rsplit("trial=", 1)[1].removesuffix(".parquet")) for k in trial_keys]
    assert len(kept) == 2 and all(r["status"] == "completed" for r in kept)

    # The object removed, --resume completes the sweep (report, MLflow parent) without training again.
    settings.boto3_client().delete_object(Bucket=settings.bucket, Key=bad.split("/", 1)[1])
    again = subprocess.run(
        driver_cmd(live, sweep, live["env"]["RADAE_S3_ENDPOINT"], ["--resume"]),
        cwd=ROOT,
        env=live["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0 and f"sweep {sweep} done: 2 rows" in again.stdout, (
        again.stdout[-4000:] + again.stderr[-4000:]
    )
    measurements["faults_test_seconds"] = round(time.time() - t0, 1)

    rows = results.read_sweep(settings, sweep).to_pylist()
    ids = [r["trial_id"] for r in rows]
    lost, duplicated = 2 - len(set(ids)), len(ids) - len(set(ids))
    faults.update(
        rows=len(rows),
        rows_lost=lost,
        rows_duplicated=duplicated,
        trials_restarted=sum(1 for r in rows if r["resumed_from_epoch"]),
    )
    assert len(raw_objects(settings, sweep)) == 2 and lost == 0 and duplicated == 0
    assert all(r["status"] == "completed" and r["metric.epochs_trained"] == EPOCHS for r in rows)
    written = [sorted((r["trial_id"], r["finished_at"], r.get("metric.score")) for r in rs) for rs in (rows, kept)]
    assert written[0] == written[1]  # the rows written before the corrupt object, unchanged
    assert faults["s3_connections_reset"] > 0  # the outage was met by the sweep's S3 clients
    assert faults["trials_restarted"] == 0  # training never stopped: no trial failed and resumed

    tracker = Tracker(live["env"]["MLFLOW_TRACKING_URI"])
    runs = tracker.trial_runs(sweep)
    assert len(runs) == 2 and all(run.info.status == "FINISHED" for run in runs)
    for run in runs:  # every epoch's metrics reached MLflow, across the restart
        assert [m.step for m in tracker.client.get_metric_history(run.info.run_id, "val_loss")] == list(
            range(1, EPOCHS + 1)
        )
    study = load_study(live["work"] / sweep / "optuna.db", sweep)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2


def test_full_disk_under_the_trial_work_folder_then_resume(live_stack, measurements):
    """The trial work folder is a small tmpfs, filled after the first epoch: the trial fails with an error
    naming the full folder, its last good checkpoint survives there, and --resume (space freed)
    continues from it: one row, completed, resumed from that epoch."""
    live, sweep = live_stack, f"disk-{uuid.uuid4().hex[:6]}"
    settings = settings_of(live)
    trials = live["work"] / sweep / "trials"
    trials.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(trials)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs for the full-disk fault (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}"
        )
    state_dir = live["work"] / sweep / "state"
    extra = ["--num-samples", "1", "--max-failures", "1"]
    t0 = time.time()
    try:
        driver = subprocess.Popen(
            driver_cmd(live, sweep, live["env"]["RADAE_S3_ENDPOINT"], extra),
            cwd=ROOT,
            env=live["env"],
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(driver.stdout), daemon=True)
        reader.start()
        trial, (epoch, _) = wait_for(
            lambda: next(iter(progress(state_dir).items()), None), "a first epoch", timeout=420
        )
        filler = trials / "filler"
        with open(filler, "wb") as f:  # fill the folder's device to the last byte
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        rc = driver.wait(timeout=600)
        reader.join(timeout=10)
        text = "".join(output)
        assert rc != 0 and f"trial {trial}: no space left on the device of its work folder" in text, text[-6000:]
        from radae.checkpoint import load_checkpoint

        kept = load_checkpoint(trials / sweep / trial / "checkpoint.pt")  # the last good checkpoint survived whole
        assert 1 <= kept["epoch"] < EPOCHS
        (row,) = results.read_sweep(settings, sweep).to_pylist()
        assert row["trial_id"] == trial and row["status"] == "error"

        filler.unlink()  # space returns
        again = subprocess.run(
            driver_cmd(live, sweep, live["env"]["RADAE_S3_ENDPOINT"], [*extra, "--resume"]),
            cwd=ROOT,
            env=live["env"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    finally:
        subprocess.run(["umount", "-l", str(trials)], check=False)
    rows = results.read_sweep(settings, sweep).to_pylist()
    assert len(rows) == 1 == len(raw_objects(settings, sweep))
    assert rows[0]["trial_id"] == trial and rows[0]["status"] == "completed"
    assert rows[0]["resumed_from_epoch"] >= kept["epoch"]
    measurements["disk_full_test_seconds"] = round(time.time() - t0, 1)
    measurements.setdefault("faults", {}).update(
        disk_full=1, disk_full_rows=len(rows), disk_full_resumed_from=rows[0]["resumed_from_epoch"]
    )
