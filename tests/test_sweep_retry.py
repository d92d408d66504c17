"""Retries that name the outage (radae.store.retry): the generic loop on a real loopback port, and the MLflow
client against a closed port and a real MLflow server behind a loopback proxy that goes away and comes back.
(The S3 side, on a real SeaweedFS server, is in test_sweep_storage.py.)"""

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from tcp_proxy import TcpProxy

from cluster.stack import free_port
from radae.store.retry import Outage, RetryPolicy, call
from radae.store.tracking import Tracker, TrackingError


class Away(RuntimeError):
    pass


def test_call_names_each_failure_and_the_recovery(caplog):
    """A port with nothing listening until ~1 s later: refused attempts are logged with their retry, then the recovery."""
    port = free_port()
    listener = socket.socket()

    def open_port():
        listener.bind(("127.0.0.1", port))
        listener.listen(1)

    threading.Timer(1.0, open_port).start()
    outage = Outage("Test service", f"tcp://127.0.0.1:{port}")
    try:
        with caplog.at_level(logging.WARNING, logger="radae.store.retry"):
            conn = call(
                lambda: socket.create_connection(("127.0.0.1", port), timeout=1),
                outage=outage,
                what="connecting",
                transient=lambda e: isinstance(e, ConnectionRefusedError),
                error=Away,
                policy=RetryPolicy(20, 0.2, 0.4),
            )
        conn.close()
    finally:
        listener.close()
    lines = caplog.text.splitlines()
    failed = [
        ln
        for ln in lines
        if f"Test service tcp://127.0.0.1:{port} unreachable connecting: ConnectionRefusedError" in ln
    ]
    assert failed and "; retry 2/20 in 0.2 s" in failed[0] and "; retry 3/20 in 0.4 s" in failed[1]
    assert re.search(rf"Test service tcp://127.0.0.1:{port} reachable again after 1 s \(connecting\)", caplog.text)
    # A non-transient error is raised at once, unlogged.
    with pytest.raises(ValueError, match="bad"):
        call(
            lambda: (_ for _ in ()).throw(ValueError("bad")),
            outage=outage,
            what="x",
            transient=lambda e: False,
            error=Away,
        )


def test_tracker_on_a_closed_port_names_the_server(caplog):
    uri = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="radae.store.retry"), pytest.raises(TrackingError) as err:
        Tracker(uri, "unit", policy=RetryPolicy(3, 0.1, 0.1))
    assert f"MLflow tracking server {uri} unreachable calling get_experiment_by_name for " in str(err.value)
    assert "(3 attempts): MlflowException:" in str(err.value) and "--resume finds its MLflow run again" in str(
        err.value
    )
    assert caplog.text.count(f"MLflow tracking server {uri} unreachable calling get_experiment_by_name") == 2


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow server (SQLite, local artifacts) on a free loopback port; stopped by its process group."""
    tmp = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    cmd = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp / 'mlflow.db'}",
        "--artifacts-destination",
        str(tmp / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with open(tmp / "server.log", "wb") as log:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
    deadline = time.time() + 240
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            break
        except OSError:
            assert proc.poll() is None and time.time() < deadline, (tmp / "server.log").read_text()[-3000:]
            time.sleep(0.5)
    yield port
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_tracking_survives_a_server_outage_and_logs_nothing_twice(mlflow_server, caplog):
    """The tracking server goes away for ~2 s (the proxy resets every connection): metric and tag calls are
    retried, logged, and land once; a run creation whose request may have reached the server is not repeated."""
    proxy = TcpProxy(mlflow_server)
    try:
        tracker = Tracker(proxy.endpoint, "outage", policy=RetryPolicy(10, 0.5, 1.0))
        parent = tracker.parent_run("sw-out", {})
        run = tracker.trial_run(parent, "sw-out", "t1", {"loss.alpha": 0.5}, {})
        tracker.log_metrics(run, {"val_loss": 2.0}, step=1)
        proxy.down()
        threading.Timer(2.0, proxy.back_up).start()
        with caplog.at_level(logging.WARNING, logger="radae.store.retry"):
            tracker.log_metrics(run, {"val_loss": 1.5}, step=2)
            tracker.end(run)
        assert proxy.refused >= 1 and "Max retries exceeded" not in caplog.text  # urllib3's wrapper dropped
        assert re.search(r"failed with exception (ProtocolError|NewConnectionError)\(", caplog.text)
        assert (
            f"MLflow tracking server {proxy.endpoint} unreachable calling log_batch: MlflowException: API request to"
            in caplog.text
        )
        assert re.search(
            rf"MLflow tracking server {proxy.endpoint} reachable again after [1-4] s \(calling log_batch\)", caplog.text
        )
        history = tracker.client.get_metric_history(run, "val_loss")
        assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.5)]  # nothing lost, nothing twice
        assert tracker.client.get_run(run).info.status == "FINISHED"

        proxy.down()  # the connection is reset after it was accepted: the request may have been processed
        try:
            with pytest.raises(Exception, match="(?i)connection"):
                tracker.client.create_run(
                    tracker.experiment_id, tags={"radae.sweep_id": "sw-out", "radae.trial_id": "t2"}
                )
        finally:
            proxy.back_up()
        assert [r.data.tags["radae.trial_id"] for r in tracker.trial_runs("sw-out")] == ["t1"]
    finally:
        proxy.close()
