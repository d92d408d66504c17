"""Parquet rows in a real S3 server (SeaweedFS, as the stack runs it, on free loopback ports), the driver lease and
the preflight checks."""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from cluster import seaweed
from cluster.stack import free_port
from radae.objective import FID_WEIGHT
from radae.store import results
from radae.store.preflight import PreflightError, check_mlflow, check_ray, check_storage, preflight
from radae.store.settings import StorageSettings

KEY, SECRET = "radaetestkey01", "test-secret-Zq8Rw1XyVb6"


class Seaweed:
    """A real SeaweedFS S3 server (``weed mini``, as the stack runs it) on 127.0.0.1 over ``data_dir``, with the
    credentials KEY/SECRET; started in a process group of its own, stopped by its PID."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir, self.log, self.proc = data_dir, log, None
        self.identities = data_dir.parent / "identities.json"
        seaweed.write_identities(self.identities, KEY, SECRET)
        self.port = free_port()
        self.settings = StorageSettings(
            bucket="radae-test",
            endpoint=f"http://127.0.0.1:{self.port}",
            prefix="unit",
            access_key=KEY,
            secret_key=SECRET,
        )

    def start(self) -> None:
        ports = seaweed.component_ports(taken={self.port})
        cmd = seaweed.command(
            str(Path(sys.executable).parent / "weed"), self.data_dir, self.identities, self.port, ports
        )
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 120
        while not seaweed.ensure_bucket(self.settings):
            assert self.proc.poll() is None and time.time() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.3)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A real SeaweedFS S3 server on 127.0.0.1 with one bucket; stopped by its PID afterwards."""
    root = tmp_path_factory.mktemp("seaweed")
    server = Seaweed(root / "data", root / "weed.log")
    server.start()
    yield server.settings
    server.stop()


def row(trial, status="completed", score=0.5, **extra):
    return results.make_row(
        sweep_id="sw-1",
        trial_id=trial,
        status=status,
        config={"loss.alpha": 0.9, "eval.levels": (1.0, 3.0, 5.0), "data.train_limit": None},
        params={"loss.alpha": 0.9},
        metrics={"score": score, "fid": 12.5, "evaluated": True},
        timings={"started_at": 1.0, "finished_at": 2.0},
        extra=extra,
    )


def test_rows_round_trip_one_object_per_trial(s3):
    uri = results.write_row(s3, row("t_00001"))
    assert uri == "s3://radae-test/unit/results/sweep=sw-1/trial=t_00001.parquet"
    results.write_row(s3, row("t_00002", score=0.7))
    table = results.read_sweep(s3, "sw-1")
    assert table.num_rows == 2 and table.column("trial_id").to_pylist() == ["t_00001", "t_00002"]
    assert table.column("metric.score").to_pylist() == [0.5, 0.7]
    assert table.column("config.eval.levels").to_pylist()[0] == [1.0, 3.0, 5.0]
    assert table.column("metric.evaluated").to_pylist() == [1.0, 1.0]
    df = results.read_sweep(s3, "sw-1", as_pandas=True)
    assert list(df["status"]) == ["completed", "completed"]


def test_rewriting_a_trial_replaces_its_row(s3):
    for score in (0.1, 0.2, 0.3):  # a retried or restored trial writes again
        results.write_row(s3, row("t_00003", score=score))
    results.write_row(s3, row("t_00003", score=0.9))
    table = results.read_sweep(s3, "sw-1")
    trials = table.column("trial_id").to_pylist()
    assert trials.count("t_00003") == 1
    assert table.column("metric.score").to_pylist()[trials.index("t_00003")] == 0.9
    assert results.read_row(s3, "sw-1", "t_00003")["metric.score"] == 0.9
    assert results.read_row(s3, "sw-1", "t_99999") is None


def test_rows_of_different_shapes_unify(s3):
    results.write_row(
        s3,
        results.make_row(
            sweep_id="sw-2",
            trial_id="a",
            status="pruned",
            config={"loss.alpha": 0.5},
            params={},
            metrics={"val_loss": 1.5},
            timings={},
        ),
    )
    results.write_row(s3, {**row("b"), "sweep_id": "sw-2"})
    table = results.read_sweep(s3, "sw-2")
    assert table.num_rows == 2
    assert table.column("metric.score").to_pylist() == [None, 0.5]
    assert table.column("status").to_pylist() == ["pruned", "completed"]
    assert results.read_sweep(s3, "no-such-sweep").num_rows == 0


def test_no_secret_reaches_parquet(s3):
    leaky = row("t_secret", note=f"endpoint with {SECRET}")
    leaky["config.data.data_dir"] = f"/mnt/{KEY}/{SECRET}"
    leaky["aws_secret_access_key"] = SECRET
    results.write_row(s3, leaky)
    raw = (
        s3.boto3_client()
        .get_object(Bucket="radae-test", Key="unit/results/sweep=sw-1/trial=t_secret.parquet")["Body"]
        .read()
    )
    assert SECRET.encode() not in raw and KEY.encode() not in raw
    stored = results.read_row(s3, "sw-1", "t_secret")
    assert stored["aws_secret_access_key"] == "***" and stored["config.data.data_dir"] == "/mnt/***/***"


def test_bad_ids_cannot_escape_the_prefix(s3):
    with pytest.raises(results.ResultsError, match="trial id"):
        results.trial_path(s3, "sw-1", "../x")


def test_preflight_finds_each_bad_service(s3):
    assert check_storage(s3) is None
    missing = StorageSettings(bucket="no-such-bucket", endpoint=s3.endpoint, access_key=KEY, secret_key=SECRET)
    assert "bucket 'no-such-bucket' does not exist" in check_storage(missing)
    dead = StorageSettings(
        bucket="radae-test", endpoint=f"http://127.0.0.1:{free_port()}", access_key=KEY, secret_key=SECRET
    )
    t0 = time.time()
    assert "unreachable" in check_storage(dead, timeout=2) and time.time() - t0 < 5
    assert "MLflow server" in check_mlflow(f"http://127.0.0.1:{free_port()}", timeout=2)
    assert "must be http" in check_mlflow("file:///tmp/mlruns")
    assert "Ray cluster at" in check_ray(f"127.0.0.1:{free_port()}", timeout=2)
    assert "host:port" in check_ray("nonsense")
    assert check_ray(None) is None and check_ray("local") is None
    with pytest.raises(PreflightError) as info:
        preflight(missing, f"http://127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}", timeout=2)
    message = str(info.value)
    assert "no-such-bucket" in message and "MLflow" in message and "Ray" in message and SECRET not in message


def test_driver_rows_for_pruned_trials(s3, monkeypatch):
    """RowsCallback's row for a trial ASHA stopped: its config and last per-epoch metrics, status pruned."""
    from types import SimpleNamespace

    from radae.config import RunConfig, apply_overrides
    from radae.sweep.runner import _status_row
    from radae.sweep.trial import SweepContext

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    ctx = SweepContext(
        sweep_id="sw-3",
        base=apply_overrides(RunConfig(), {"data.name": "mnist", "train.epochs": 2}),
        space={"loss.alpha": {"type": "uniform", "low": 0.1, "high": 1.0}},
        objective="scalar",
        fid_weight=FID_WEIGHT,
        storage=s3.public(),
        tracking_uri="http://127.0.0.1:1",
        experiment="x",
        parent_run_id="p",
        work_dir="/tmp",
    )
    assert "secret_key" not in ctx.storage and ctx.settings().secret_key == SECRET  # credentials from the environment
    trial = SimpleNamespace(
        trial_id="t_pruned",
        config={"loss.alpha": 0.3},
        last_result={"val_loss": 3.5, "epoch": 1, "training_iteration": 1, "done": False},
    )
    _status_row(ctx, trial, "pruned")
    stored = results.read_row(s3, "sw-3", "t_pruned")
    assert stored["status"] == "pruned" and stored["param.loss.alpha"] == 0.3
    assert (
        stored["config.loss.alpha"] == 0.3
        and stored["config.train.epochs"] == 2
        and stored["config.data.name"] == "mnist"
    )
    assert stored["metric.val_loss"] == 3.5 and "metric.score" not in stored
    assert stored["seed"] == 0 and stored["config_label"] == "loss.alpha=0.3" and stored["fid_network_sha256"] is None

    # A seeded trial (seed index 1 of base seed 5) stopped early: its row names the seed and configuration.
    from dataclasses import replace

    from radae.sweep.seeds import config_key

    seeded = replace(
        ctx,
        base=apply_overrides(ctx.base, {"train.seed": 5}),
        fid_networks={"mnist": {"key": "k", "sha256": "ab" * 32}},
    )
    _status_row(
        seeded, SimpleNamespace(trial_id="t_seed1", config={"loss.alpha": 0.3, "seed": 1}, last_result={}), "pruned"
    )
    stored = results.read_row(s3, "sw-3", "t_seed1")
    assert stored["seed"] == 6 and stored["config.train.seed"] == 6 and "param.seed" not in stored
    assert stored["config_key"] == config_key({"loss.alpha": 0.3}) and stored["fid_network_sha256"] == "ab" * 32


@pytest.mark.slow
def test_one_fid_network_per_sweep_stored_reused_fetched_and_checked(s3, tmp_path, monkeypatch):
    """The driver builds the sweep's FID network once (real MNIST), a second driver reuses it, trials fetch it checked."""
    from radae.config import RunConfig, apply_overrides
    from radae.fid import FIDError, file_sha256
    from radae.store import fidnet
    from radae.sweep.space import SearchSpace

    mnist = Path("/work/shared/data/mnist")
    if not (mnist / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("real MNIST not found")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    base = apply_overrides(
        RunConfig(),
        {
            "data.name": "mnist",
            "data.data_dir": str(mnist),
            "data.train_limit": 600,
            "data.val_size": 100,
            "eval.feature_epochs": 1,
            "eval.feature_cache": str(tmp_path / "c"),
        },
    )
    space = SearchSpace.from_dict({"loss.alpha": {"type": "grid", "values": [0.5, 0.95]}})
    nets = fidnet.publish_feature_nets(s3, "sw-fid", space, base)
    key = "radae-test/unit/fid/sweep=sw-fid/mnist/feature_net.pt"
    assert set(nets) == {"mnist"} and nets["mnist"]["key"] == key and len(nets["mnist"]["sha256"]) == 64
    stored = s3.boto3_client().get_object(Bucket="radae-test", Key=key.split("/", 1)[1])["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == nets["mnist"]["sha256"]

    # A resumed driver reuses the stored network: it never builds one again.
    monkeypatch.setattr(fidnet, "_build_and_store", lambda *a: pytest.fail("a stored network must not be rebuilt"))
    assert fidnet.publish_feature_nets(s3, "sw-fid", space, base) == nets
    # No classifier FID, no network.
    assert fidnet.publish_feature_nets(s3, "sw-none", space, apply_overrides(base, {"eval.fid": False})) == {}

    # Trials fetch it into a cache keyed by the checksum, checked; a cached copy is used as is.
    net = {**nets["mnist"], "storage": s3.public()}
    got = fidnet.fetch_feature_net(net, tmp_path / "trial")
    assert (
        got.weights_path == str(tmp_path / "trial" / f"{net['sha256']}.pt")
        and file_sha256(got.weights_path) == net["sha256"]
    )
    assert fidnet.fetch_feature_net(net, tmp_path / "trial") == got and fidnet.fetch_feature_net(None) is None
    # A corrupt stored object (or another network) fails with the object's name, before any training.
    client = s3.boto3_client()
    client.put_object(Bucket="radae-test", Key=key.split("/", 1)[1], Body=stored[:-100])
    with pytest.raises(
        FIDError, match=r"s3://radae-test/unit/fid/sweep=sw-fid/mnist/feature_net.pt fails its check.*expected"
    ):
        fidnet.fetch_feature_net(net, tmp_path / "other")
    assert list((tmp_path / "other").iterdir()) == []  # nothing half-written is left to be trusted
    with pytest.raises(FIDError, match="does not exist"):
        fidnet.fetch_feature_net({**net, "key": "radae-test/unit/fid/nothing.pt"}, tmp_path / "other")


@pytest.mark.parametrize("resume", [True, False])
def test_resume_state_checked_before_ray_and_mlflow(s3, tmp_path, monkeypatch, resume):
    """--resume of a missing sweep (or a fresh run over an existing one) fails before Ray starts or MLflow is touched."""
    import ray

    from radae.sweep.definition import load_definition
    from radae.sweep.options import SweepOptions
    from radae.sweep.runner import SweepError, run_sweep, tune_path

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    sweep_id = f"sw-state-{resume}"
    if not resume:  # an experiment already stored under this id
        _, fs, exp_path = tune_path(s3, sweep_id)
        with fs.open_output_stream(f"{exp_path}/tuner.pkl") as out:
            out.write(b"x")
    db = tmp_path / "mlflow.db"
    defn = load_definition(Path(__file__).parents[1] / "sweeps" / "alpha_modes.yaml", smoke=True)
    opts = SweepOptions(
        sweep_id=sweep_id,
        storage=s3,
        tracking_uri=f"sqlite:///{db}",
        resume=resume,
        study_db=str(tmp_path / "optuna.db"),
        work_dir=str(tmp_path / "trials"),
    )
    assert not ray.is_initialized()
    try:
        with pytest.raises(SweepError, match="--resume" if resume else "already exists"):
            run_sweep(defn, opts)
        assert not ray.is_initialized() and not db.exists()
    finally:
        if ray.is_initialized():
            ray.shutdown()


class _CreatesFile:
    """Unpickling this runs ``open(path, "w")``: the file appears if the pickle is ever executed."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("packed", [False, True])
def test_crafted_checkpoint_in_the_bucket_is_refused(s3, tmp_path, packed):
    """A pickle whose __reduce__ would create a file, uploaded as a trial's Ray checkpoint, is refused on
    restore with an error naming it; the file is never created and the trial's folder is untouched."""
    import torch
    from ray.train import Checkpoint

    from radae.checkpoint import FORMAT, CheckpointError
    from radae.sweep.trial import CHECKPOINT_FILE, restore_checkpoint

    marker = tmp_path / "pwned"
    name = f"m0/{CHECKPOINT_FILE}" if packed else CHECKPOINT_FILE
    local = tmp_path / "crafted" / name
    local.parent.mkdir(parents=True)
    torch.save(
        {"format": FORMAT, "config": {}, "image_shape": (1, 28, 28), "model": _CreatesFile(str(marker)), "epoch": 3},
        local,
    )
    path, fs = s3.ray_storage("train", "sw-1", "sw-1-t_00001", "checkpoint_000002")
    with fs.open_output_stream(f"{path}/{name}") as out:
        out.write(local.read_bytes())
    restored = Checkpoint(path, filesystem=fs)
    dest = tmp_path / "trial" / CHECKPOINT_FILE
    with restored.as_directory() as ckpt_dir, pytest.raises(CheckpointError) as err:
        restore_checkpoint(Path(ckpt_dir) / name, dest, f"{restored.path}/{name}")
    assert f"{path}/{name}" in str(err.value) and "refused" in str(err.value) and "io.open" in str(err.value)
    assert not marker.exists() and not dest.exists()
    # The project's own checkpoints still restore (and report their epoch).
    with fs.open_output_stream(f"{path}/{name}") as out:
        out.write(
            torch_bytes(
                {"format": FORMAT, "config": {}, "image_shape": (1, 28, 28), "model": {"w": torch.ones(2)}, "epoch": 3}
            )
        )
    with Checkpoint(path, filesystem=fs).as_directory() as ckpt_dir:
        assert restore_checkpoint(Path(ckpt_dir) / name, dest, name) == 3 and dest.exists()


def torch_bytes(obj) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_a_corrupt_object_in_the_results_prefix_is_named(s3):
    results.write_row(s3, row("t_00001"))
    bad = results.trial_path(s3, "sw-corrupt", "t_00002")
    results.write_row(s3, {**row("t_00003"), "sweep_id": "sw-corrupt"})
    fs = s3.pyarrow_fs()
    with fs.open_output_stream(bad) as out:
        out.write(b"PAR1 this is not parquet")
    with pytest.raises(results.ResultsError, match=rf"s3://{bad} is corrupt"):
        results.read_sweep(s3, "sw-corrupt")
    with pytest.raises(results.ResultsError, match=rf"s3://{bad} is corrupt"):
        results.read_row(s3, "sw-corrupt", "t_00002")
    assert results.read_row(s3, "sw-corrupt", "t_00003")["trial_id"] == "t_00003"  # the others still read


def test_a_second_driver_on_a_running_sweep_is_refused_and_overwrites_nothing(s3, tmp_path, monkeypatch):
    """The lease of a live driver (another process on this host) refuses run_sweep before Ray, MLflow or any
    file; a lease whose PID is gone or whose heartbeat is stale is taken over."""
    import ray

    from radae.store import procfs
    from radae.store.lease import DriverLease, LeaseError, lease_path
    from radae.sweep.definition import load_definition
    from radae.sweep.options import SweepOptions
    from radae.sweep.runner import SweepError, run_sweep

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        held = {
            "sweep_id": "sw-lease",
            "host": socket.gethostname(),
            "pid": other.pid,
            "pid_start": procfs.start_time(other.pid),
            "token": "other-driver",
            "acquired_at": time.time(),
            "heartbeat": time.time(),
        }
        fs, path = s3.pyarrow_fs(), lease_path(s3, "sw-lease")
        with fs.open_output_stream(path) as out:
            out.write(json.dumps(held).encode())
        before = fs.open_input_stream(path).read()
        db, state = tmp_path / "mlflow.db", tmp_path / "state"
        defn = load_definition(Path(__file__).parents[1] / "sweeps" / "alpha_modes.yaml", smoke=True)
        opts = SweepOptions(
            sweep_id="sw-lease",
            storage=s3,
            tracking_uri=f"sqlite:///{db}",
            resume=True,
            study_db=str(tmp_path / "optuna.db"),
            work_dir=str(tmp_path / "trials"),
            state_dir=str(state),
        )
        with pytest.raises(SweepError, match=rf"being run by another driver \(pid {other.pid} .*lease s3://{path}"):
            run_sweep(defn, opts)
        assert not ray.is_initialized() and not db.exists() and not (state / "driver.pid").exists()
        assert fs.open_input_stream(path).read() == before  # nothing overwritten
        # The holder dies: its lease is taken over at once (same host, PID gone).
        other.kill()
        other.wait()
        with DriverLease(s3, "sw-lease") as lease:
            assert lease.read()["token"] == lease.record["token"]
            with pytest.raises(LeaseError, match=f"pid {lease.record['pid']}"):
                DriverLease(s3, "sw-lease").acquire()
        assert lease.read() is None  # released
        # A stale heartbeat (a driver on another host that stopped beating) is taken over too.
        with fs.open_output_stream(path) as out:
            out.write(json.dumps({**held, "host": "elsewhere", "heartbeat": time.time() - 120}).encode())
        with DriverLease(s3, "sw-lease", ttl=60) as lease:
            assert lease.read()["token"] == lease.record["token"]
    finally:
        other.kill()
        other.wait()


RACER = """
import json, sys, time
from radae.store.lease import DriverLease, LeaseError
from radae.store.settings import StorageSettings

settings = StorageSettings.from_env(bucket=sys.argv[1], endpoint=sys.argv[2], prefix=sys.argv[3])
lease = DriverLease(settings, sys.argv[4], period=0.5)
time.sleep(max(0.0, float(sys.argv[5]) - time.time()))  # both racers start in the same instant
try:
    lease.acquire()
except LeaseError as exc:
    print(json.dumps({"won": False, "error": str(exc)}), flush=True)
    sys.exit(0)
print(json.dumps({"won": True, "token": lease.record["token"]}), flush=True)
time.sleep(float(sys.argv[6]))  # hold it while the other one tries
assert not lease.lost
lease.release()
"""


def race(s3, sweep_id: str, racers: int = 2) -> list[dict]:
    """``racers`` driver processes acquire the lease of ``sweep_id`` in the same instant; their outcomes."""
    env = {**os.environ, "RADAE_S3_ACCESS_KEY_ID": KEY, "RADAE_S3_SECRET_ACCESS_KEY": SECRET}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    at = time.time() + 8.0  # after every racer imported boto3 and pyarrow, even on a loaded machine
    argv = [s3.bucket, s3.endpoint, s3.prefix, sweep_id, f"{at:.3f}", "3"]
    procs = [
        subprocess.Popen([sys.executable, "-c", RACER, *argv], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(racers)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    return [json.loads(out.strip().splitlines()[-1]) for out in outs]


def test_two_drivers_racing_for_a_free_or_a_dead_lease_exactly_one_wins(s3):
    """Conditional writes on the real server: two driver processes starting in the same instant on a free
    lease (If-None-Match) and on a dead driver's lease (If-Match on its ETag); each time exactly one holds the
    sweep, the other is refused naming the winner, and the winner's release leaves no lease behind."""
    from radae.store.lease import DriverLease, lease_path

    for round_ in range(2):
        outcomes = race(s3, f"sw-race-{round_}")
        winners = [o for o in outcomes if o["won"]]
        assert len(winners) == 1, outcomes
        (loser,) = [o for o in outcomes if not o["won"]]
        assert "is being run by another driver" in loser["error"]
        assert DriverLease(s3, f"sw-race-{round_}").read() is None  # released by the winner
    # A driver that is gone (its PID exited) left its lease: both racers find it dead, one takes it over.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    held = {"host": socket.gethostname(), "pid": dead.pid, "pid_start": 1.0, "token": "gone", "heartbeat": 0}
    with s3.pyarrow_fs().open_output_stream(lease_path(s3, "sw-dead")) as out:
        out.write(json.dumps(held).encode())
    outcomes = race(s3, "sw-dead")
    assert sum(o["won"] for o in outcomes) == 1, outcomes
    assert DriverLease(s3, "sw-dead").read() is None  # the winner took it over and released it


def test_a_driver_whose_lease_was_taken_over_neither_renews_nor_deletes_it(s3, caplog):
    """If-Match on the ETag of our own last write: once another driver took the lease over (here: rewrote it),
    our heartbeat fails its condition, logs the loss and stops; release leaves the other's lease in place."""
    import logging

    from radae.store.lease import DriverLease

    lease = DriverLease(s3, "sw-lost", period=0.2)
    with caplog.at_level(logging.ERROR, logger="radae.store.lease"):
        lease.acquire()
        other = {**lease.record, "token": "another-driver", "heartbeat": time.time()}
        s3.boto3_client().put_object(Bucket=s3.bucket, Key=lease.key, Body=json.dumps(other).encode())
        deadline = time.monotonic() + 30
        while not lease.lost and time.monotonic() < deadline:
            time.sleep(0.1)
        lease.release()
    assert lease.lost and "was taken over by another driver" in caplog.text
    assert lease.read()["token"] == "another-driver"


def test_row_writes_retry_with_backoff_while_the_endpoint_is_away(s3, caplog):
    """The S3 endpoint resets every connection for ~2 s (a loopback proxy in front of the server): the row write logs
    each failed attempt naming the endpoint and the object, backs off, logs the recovery and lands once."""
    import dataclasses
    import logging
    import threading

    from tcp_proxy import TcpProxy

    from radae.store.retry import RetryPolicy

    proxy = TcpProxy(int(s3.endpoint.rsplit(":", 1)[1]))
    try:
        via = dataclasses.replace(s3, endpoint=proxy.endpoint)
        results.write_row(via, {**row("t_00008"), "sweep_id": "sw-outage"})  # through the proxy while it is up
        proxy.down()
        threading.Timer(2.0, proxy.back_up).start()
        with caplog.at_level(logging.WARNING, logger="radae.store.retry"):
            uri = results.write_row(via, {**row("t_00009"), "sweep_id": "sw-outage"}, policy=RetryPolicy(10, 0.5, 1.0))
        key = uri.removeprefix("s3://")
        assert proxy.refused >= 1, (proxy.refused, proxy.relayed, caplog.text)
        assert f"S3 endpoint {proxy.endpoint} unreachable writing s3://{key}: OSError:" in caplog.text
        assert "NETWORK_CONNECTION" in caplog.text and "; retry 2/10 in 0.5 s" in caplog.text
        assert f"S3 endpoint {proxy.endpoint} reachable again after" in caplog.text
        assert results.read_sweep(s3, "sw-outage").column("trial_id").to_pylist() == [
            "t_00008",
            "t_00009",
        ]  # one row each
    finally:
        proxy.close()


def test_an_endpoint_that_stays_away_fails_the_write_naming_it(s3, caplog):
    """A closed loopback port: every attempt fails, each logged; then ResultsError names endpoint, object, attempts."""
    import dataclasses
    import logging

    from radae.store.retry import RetryPolicy

    closed = dataclasses.replace(s3, endpoint=f"http://127.0.0.1:{free_port()}")
    key = results.trial_path(closed, "sw-away", "t_00001")
    with caplog.at_level(logging.WARNING, logger="radae.store.retry"), pytest.raises(results.ResultsError) as err:
        results.write_row(closed, {**row("t_00001"), "sweep_id": "sw-away"}, policy=RetryPolicy(3, 0.1, 0.2))
    assert f"S3 endpoint {closed.endpoint} unreachable writing s3://{key} for " in str(err.value)
    assert "(3 attempts): OSError:" in str(err.value) and "Could not connect" in str(err.value)
    assert caplog.text.count(f"S3 endpoint {closed.endpoint} unreachable writing s3://{key}") == 2  # retries 2/3, 3/3
    assert "retry 3/3 in 0.2 s" in caplog.text and "reachable again" not in caplog.text
    with pytest.raises(results.ResultsError, match=f"S3 endpoint {closed.endpoint} unreachable listing"):
        results.read_sweep(closed, "sw-away", policy=RetryPolicy(2, 0.1, 0.1))


def test_a_refusal_is_not_retried(s3, caplog):
    """A missing bucket is an answer, not an outage: raised at once, no retry warning."""
    import dataclasses
    import logging

    missing = dataclasses.replace(s3, bucket="radae-no-such-bucket")
    t0 = time.time()
    with caplog.at_level(logging.WARNING, logger="radae.store.retry"), pytest.raises(OSError, match="(?i)bucket"):
        results.write_row(missing, row("t_00001"))
    assert "unreachable" not in caplog.text and time.time() - t0 < 10


def test_the_lease_heartbeat_names_an_outage_and_its_end(s3, caplog):
    """The driver lease's heartbeat through a proxy that goes away for ~2 s: each missed beat and the recovery
    are logged naming the endpoint and the lease; the lease is still held afterwards."""
    import dataclasses
    import logging

    from tcp_proxy import TcpProxy

    from radae.store.lease import DriverLease

    proxy = TcpProxy(int(s3.endpoint.rsplit(":", 1)[1]))
    try:
        via = dataclasses.replace(s3, endpoint=proxy.endpoint)
        with (
            caplog.at_level(logging.WARNING, logger="radae.store.retry"),
            DriverLease(via, "sw-beat", period=0.3) as lease,
        ):
            proxy.down()
            time.sleep(2.0)
            proxy.back_up()
            deadline = time.monotonic() + 60  # a loaded machine may take a while to beat again
            while "reachable again" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.2)
            assert lease.read()["token"] == lease.record["token"]
        assert re.search(
            rf"S3 endpoint {proxy.endpoint} unreachable renewing the driver lease s3://{re.escape(lease.path)}: "
            r"(ConnectionClosedError|EndpointConnectionError):",
            caplog.text,
        )
        assert "; next heartbeat in 0.3 s" in caplog.text
        assert re.search(
            rf"S3 endpoint {proxy.endpoint} reachable again after \d+ s \(renewing the driver lease", caplog.text
        )
    finally:
        proxy.close()


def test_the_server_refuses_any_other_credentials(s3):
    """Only the generated identity gets in: a wrong secret, an unknown key and an unsigned request are refused."""
    import dataclasses

    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import ClientError

    s3.boto3_client().put_object(Bucket=s3.bucket, Key="unit/auth/probe", Body=b"x")
    wrong_secret = dataclasses.replace(s3, secret_key=SECRET + "x").boto3_client()
    unknown_key = dataclasses.replace(s3, access_key="radaeunknown00").boto3_client()
    unsigned = boto3.client(
        "s3", endpoint_url=s3.endpoint, region_name=s3.region, config=Config(signature_version=UNSIGNED)
    )
    for client, code in (
        (wrong_secret, "SignatureDoesNotMatch"),
        (unknown_key, "InvalidAccessKeyId"),
        (unsigned, "AccessDenied"),
    ):
        with pytest.raises(ClientError) as refused:
            client.get_object(Bucket=s3.bucket, Key="unit/auth/probe")
        assert refused.value.response["Error"]["Code"] == code
    assert s3.boto3_client().get_object(Bucket=s3.bucket, Key="unit/auth/probe")["Body"].read() == b"x"


def objects(settings: StorageSettings) -> dict[str, str]:
    """Every object of the bucket: key -> SHA-256 of its bytes."""
    client = settings.boto3_client()
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=settings.bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"]] = hashlib.sha256(body).hexdigest()
    return out


def test_a_server_stop_and_start_keeps_every_object(tmp_path):
    """Parquet rows (pyarrow) and raw objects (boto3, up to 5 MiB: chunked by the filer) written, the server
    stopped (SIGTERM) and started again on the same data dir (every other component on new ports): every object
    reads back byte for byte, and the rows as the same table."""
    server = Seaweed(tmp_path / "data", tmp_path / "weed.log")
    server.start()
    try:
        settings = server.settings
        for i in range(1, 6):
            results.write_row(settings, {**row(f"t_{i:05d}", score=i / 10), "sweep_id": "sw-restart"})
        client = settings.boto3_client()
        for size in (0, 1, 4096, 5 * 2**20 + 3):
            client.put_object(Bucket=settings.bucket, Key=f"unit/blobs/{size}", Body=os.urandom(size))
        before, table = objects(settings), results.read_sweep(settings, "sw-restart")
        assert len(before) == 9
        server.stop()
        server.start()
        assert objects(settings) == before
        assert results.read_sweep(settings, "sw-restart").equals(table)
    finally:
        server.stop()


def test_per_image_tables_round_trip_beside_the_rows_without_touching_them(s3):
    from radae.store.images import records

    results.write_row(s3, row("t_00001") | {"sweep_id": "sw-img"})
    values = {"max_damage_msssim_recx_recxa_l3": {7: 0.5, 11: 0.25}, "robustness": {7: 0.6, 11: 0.4}}
    for trial in ("t_00001", "t_00001", "t_00002"):  # a retried trial writes again: replaced, not doubled
        uri = results.write_images(s3, "sw-img", trial, records(values, sweep_id="sw-img", trial_id=trial))
    assert uri == "s3://radae-test/unit/images/sweep=sw-img/trial=t_00002.parquet"
    df = results.read_images(s3, "sw-img", as_pandas=True)
    assert len(df) == 8 and sorted(set(df["trial_id"])) == ["t_00001", "t_00002"]
    own = df[(df["trial_id"] == "t_00001") & (df["name"] == "robustness")]
    assert dict(zip(own["image"], own["value"], strict=True)) == {7: 0.6, 11: 0.4}
    assert results.read_sweep(s3, "sw-img").num_rows == 1  # the trial rows' reader sees only its row
    assert results.read_images(s3, "no-such-sweep").num_rows == 0


def test_a_trial_worker_stores_its_members_per_image_values(s3, monkeypatch):
    """store_images (the worker loop, after evaluation): the member's values land under images/ with its seed columns."""
    import time

    from radae.config import RunConfig
    from radae.sweep.trainable import store_images
    from radae.sweep.trial import Member, SweepContext, TrialJob

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    ctx = SweepContext(
        sweep_id="sw-worker-img",
        base=RunConfig(),
        space={},
        objective="scalar",
        fid_weight=FID_WEIGHT,
        storage=s3.public(),
        tracking_uri="http://127.0.0.1:1",
        experiment="x",
        parent_run_id="p",
        work_dir="/tmp",
    )
    member = Member("t_7-m1", RunConfig(), {}, {"seed": 2, "config_key": "abc", "config_label": "K=10"})
    job = TrialJob(ctx, "t_7", "packed", (member,), time.time())
    store_images(job, member, {"robustness": {3: 0.5, 9: 0.7}})
    df = results.read_images(s3, "sw-worker-img", as_pandas=True)
    assert sorted(df["image"]) == [3, 9] and set(df["seed"]) == {2} and set(df["trial_id"]) == {"t_7-m1"}
    store_images(job, member, None)  # nothing evaluated: nothing written, nothing raised
