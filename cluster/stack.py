"""The local stack on 127.0.0.1: SeaweedFS S3 server, MLflow server (SQLite + S3 artifacts), Ray head.

    python -m cluster.stack start [--state-dir .stack] [--s3-data-dir DIR] [--num-cpus 2] [--nodes 1] [--optuna-dashboard]
    source .stack/env          # RADAE_S3_* (credentials too), MLFLOW_TRACKING_URI, RAY_ADDRESS, RAY_DASHBOARD, RAY_AUTH_*
    python -m cluster.stack status
    python -m cluster.stack restart s3        # one service that stopped (s3 or mlflow), same port and credentials
    python -m cluster.stack stop

Run from the repository root (``cluster/start_stack.sh``, ``stop_stack.sh``, ``status_stack.sh`` do).
Every service gets free loopback ports (checked before starting, so parallel stacks do not
collide) and runs in its own process group, recorded in ``<state-dir>/state.json``. ``stop``
signals exactly those process groups (SIGTERM, then SIGKILL after a grace period), then SIGKILLs
by PID any descendant of a recorded process that outlived it: never ``ray stop``, which would
stop every Ray cluster on the machine. The Ray head runs with ``--block``; Ray 2.60 puts each
worker in a process group of its own and each job driver in a session of its own, so memory
(``status``) and cleanup follow the head's process tree, not only its group. The head counts as up once
``ray start`` printed that its node started; when the CLI gave up on the node's registration
(30 s, fixed in Ray 2.60, too short on an overloaded machine) the head is started again, up to 3 times.

S3 is SeaweedFS (:mod:`cluster.seaweed`, ``weed mini``): its objects live in ``--s3-data-dir`` (default
``<state-dir>/s3-data``), which ``stop`` leaves in place, so the next ``start`` on the same state dir serves
every bucket object again (rows, reports, checkpoints, MLflow artifacts), consistent with the MLflow and
Optuna databases kept in the state dir. An access key and secret are generated at each start; the S3 server
accepts only them. They live only in ``<state-dir>/identities.json`` (the server's, mode 600),
``<state-dir>/env`` (mode 600) and the services' environment: ``RADAE_S3_*`` for the Ray head and its jobs
(read by :class:`radae.store.settings.StorageSettings`), ``AWS_*`` only for the MLflow server, which writes
artifacts to S3 itself.

Loopback only (``python -m cluster.stack sockets`` lists every listening socket of the stack's
process trees, read from the kernel's tables by :mod:`radae.store.procfs`). ``ray start
--node-ip-address=127.0.0.1`` is not enough in Ray 2.60: the CLI replaces a loopback address by the machine's address (``services.resolve_ip_for_localhost``), and
the GCS, raylet, workers and agents then bind ``*`` or that address. With
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (Ray's single-node mode, the macOS/Windows default) the node
address stays 127.0.0.1 and every Ray server binds loopback. On top of that the head requires Ray's
token authentication (``RAY_AUTH_MODE=token``): a random token in ``<state-dir>/ray_token`` (mode 600),
found by every Ray process and client through ``RAY_AUTH_TOKEN_PATH`` (exported by ``<state-dir>/env``).

``--nodes N`` (N > 1) starts N Ray nodes on this host instead of one head, each with ``--num-cpus`` CPUs, a
resource ``node<i>`` and a temp dir of its own, all on loopback (:mod:`cluster.ray_nodes`, which holds them
as Ray's ``ray.cluster_utils.Cluster``); their node ids and raylet PIDs go to ``<state-dir>/nodes.json``.

``--optuna-dashboard`` also starts optuna-dashboard on 127.0.0.1 on the stack's Optuna SQLite file
``<state-dir>/optuna.db``; ``RADAE_OPTUNA_DB`` (jobs store their studies there) and
``RADAE_OPTUNA_DASHBOARD`` (its URL) go into the env file and the Ray head's environment.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from cluster import seaweed
from radae.store import procfs
from radae.store.procfs import start_time
from radae.store.settings import ENV, StorageSettings

RAY_PORT_FLAGS = (
    "--port",
    "--dashboard-port",
    "--ray-client-server-port",
    "--node-manager-port",
    "--object-manager-port",
    "--metrics-export-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
)


# What `ray start` prints once its node registered with the GCS (ray/scripts/scripts.py).
RAY_STARTED = "Ray runtime started."
# What `ray start` prints when its node did not register in time; the stack then starts the head again.
RAY_NODE_TIMEOUT = "The current node timed out during startup"
RAY_START_ATTEMPTS = 3
# Ray's single-node mode: the node address stays 127.0.0.1 and every Ray server binds loopback.
RAY_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# Credential variables never copied from the caller's environment into a service's.
CREDENTIAL_ENV = frozenset(n for name in ("access_key", "secret_key", "session_token") for n in ENV[name])
# The files of the state dir that hold the credentials (mode 600); nothing else there may contain them.
PRIVATE_FILES = ("env", "identities.json")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (mode 600 from the first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class StackError(RuntimeError):
    """A service of the stack did not start; the message names it and its log."""


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports nothing listens on now.

    All ``n`` sockets stay bound until every port is chosen, so the kernel cannot hand out one
    port twice (separate :func:`free_port` calls can, and two services would then race for it).
    """
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _bin(name: str) -> str:
    """``name`` from this interpreter's venv (the stack must use the project's environment)."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        cmd, env=env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )


def _wait(check, what: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with status {proc.returncode}; see {log}:\n{log.read_text()[-2000:]}")
        if check():
            return
        time.sleep(0.3)
    raise StackError(f"{what} not ready after {timeout:.0f} s; see {log}")


def _log_since(log: Path, offset: int) -> str:
    """What ``log`` gained after its first ``offset`` bytes."""
    with open(log, "rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")


def _http_ok(url: str, token: str | None = None) -> bool:
    """Whether ``url`` answers 200 (with ``token`` as Ray's bearer token when given)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def stop_group(pgid: int, grace: float = 15.0) -> None:
    """SIGTERM the process group ``pgid`` (one we started), SIGKILL what remains after ``grace`` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + wait
        while time.time() < deadline:
            if not group_alive(pgid):
                return
            time.sleep(0.2)


def group_alive(pgid: int) -> bool:
    """Whether any non-zombie process of group ``pgid`` is left."""
    return bool(procfs.group_members(pgid))


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant of it, in any process group.

    A Ray head's workers run in process groups of their own (and job drivers in sessions of
    their own), so the head's group alone misses them.
    """
    return procfs.descendants(pid)


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (Ray workers, job drivers), MiB."""
    table = procfs.processes()
    return procfs.rss_mib(procfs.descendants(pid, table), table)


def stop_service(pid: int, pgid: int, grace: float = 15.0) -> None:
    """Stop a service we started: its process group (:func:`stop_group`), then SIGKILL any of its
    descendants that live in other groups and outlived it (only PIDs seen as its descendants)."""
    before = {p: start_time(p) for p in tree(pid) if p != pid}
    stop_group(pgid, grace)
    deadline = time.time() + 5.0
    while time.time() < deadline:
        left = [p for p, t in before.items() if t is not None and start_time(p) == t]
        if not left:
            return
        for p in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        time.sleep(0.2)


def group_rss_mib(pgid: int) -> float:
    """Resident memory of every process of group ``pgid``, MiB."""
    table = procfs.processes()
    return procfs.rss_mib(procfs.group_members(pgid, table), table)


def start(
    state_dir: Path,
    num_cpus: int = 2,
    bucket: str = "radae",
    prefix: str = "radae",
    optuna_dashboard: bool = False,
    s3_data_dir: Path | None = None,
    nodes: int = 1,
) -> dict[str, Any]:
    """Start SeaweedFS, MLflow, a Ray head (and optuna-dashboard); write ``state.json`` and ``env``; returns
    the state. S3 objects are kept in ``s3_data_dir`` (default ``<state_dir>/s3-data``), across stops.
    ``nodes`` > 1: that many Ray nodes of ``num_cpus`` each (:mod:`cluster.ray_nodes`)."""
    if nodes < 1:
        raise StackError(f"--nodes must be at least 1, got {nodes}")
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    s3_data_dir = (s3_data_dir or state_dir / "s3-data").resolve()
    s3_data_dir.mkdir(parents=True, exist_ok=True)
    if (state_dir / "state.json").exists():
        old = json.loads((state_dir / "state.json").read_text())
        if any(group_alive(s["pgid"]) for s in old["services"].values()):
            down = sorted(name for name, s in old["services"].items() if not group_alive(s["pgid"]))
            hint = (
                f"; {', '.join(down)} stopped: restart it with python -m cluster.stack restart {down[0]} --state-dir {state_dir}"
                if down and down[0] in RESTARTABLE
                else ""
            )
            raise StackError(f"a stack is already running from {state_dir} (stop it first{hint})")
    # Every port of the stack at once: all distinct (Ray's own ports included).
    chosen = free_ports(4 + len(RAY_PORT_FLAGS[2:]))
    ports = dict(zip(("s3", "mlflow", "ray", "dashboard"), chosen[:4], strict=True))
    s3_ports = seaweed.component_ports(taken=set(chosen))
    key, secret = "radae" + secrets.token_hex(6), secrets.token_urlsafe(24)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    storage = StorageSettings(bucket=bucket, endpoint=endpoint, prefix=prefix, access_key=key, secret_key=secret)
    identities = state_dir / "identities.json"
    seaweed.write_identities(identities, key, secret)
    token_path = state_dir / "ray_token"
    write_private(token_path, secrets.token_hex(32))
    ray_auth = {**RAY_LOOPBACK_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)}
    # No credential of the caller's environment leaks into the services: each gets its own below.
    inherited = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_ENV}
    base_env = {
        **inherited,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "RAY_USAGE_STATS_ENABLED": "0",
        **ray_auth,
    }
    state: dict[str, Any] = {
        "services": {},
        "ports": ports,
        "s3_ports": s3_ports,
        "state_dir": str(state_dir),
        "s3_data_dir": str(s3_data_dir),
        "nodes": nodes,
    }
    procs: dict[str, subprocess.Popen] = {}

    def record(name: str, proc: subprocess.Popen) -> None:
        procs[name] = proc
        state["services"][name] = {"pid": proc.pid, "pgid": proc.pid, "log": str(state_dir / f"{name}.log")}
        (state_dir / "state.json").write_text(json.dumps(state, indent=2))

    mlflow_uri = f"http://127.0.0.1:{ports['mlflow']}"
    optuna_env = _optuna_env(state_dir, free_ports(1)[0]) if optuna_dashboard else {}
    try:
        # All three start at once (each waits only for its own port); the bucket is created
        # as soon as S3 answers.
        weed = seaweed.command(_bin("weed"), s3_data_dir, identities, ports["s3"], s3_ports)
        record("s3", _spawn(weed, base_env, state_dir / "s3.log"))
        record("mlflow", _spawn_mlflow(state_dir, storage, ports["mlflow"], base_env))
        # A short temp dir: Ray's unix socket paths must stay under 107 characters.
        temp_dir = tempfile.mkdtemp(prefix="radae-ray-", dir="/tmp")
        state["ray_temp_dir"] = temp_dir
        extra = dict(zip(RAY_PORT_FLAGS[2:], (str(port) for port in chosen[4:]), strict=True))
        # `python -u`: the CLI's "Ray runtime started." reaches ray.log at once (the readiness check below).
        head_ports = {"--port": ports["ray"], "--dashboard-port": ports["dashboard"], **extra}
        if nodes > 1:
            cmd = [
                sys.executable,
                "-u",
                str(Path(__file__).with_name("ray_nodes.py")),
                f"--nodes={nodes}",
                f"--num-cpus={num_cpus}",
                f"--temp-dir={temp_dir}",
                f"--state-dir={state_dir}",
                *(f"{k}={v}" for k, v in head_ports.items()),
            ]
        else:
            cmd = [
                sys.executable,
                "-u",
                _bin("ray"),
                "start",
                "--head",
                "--block",
                f"--num-cpus={num_cpus}",
                "--node-ip-address=127.0.0.1",
                "--dashboard-host=127.0.0.1",
                f"--temp-dir={temp_dir}",
                "--disable-usage-stats",
                *(f"{k}={v}" for k, v in head_ports.items()),
            ]
        # Jobs inherit the head's environment: they find S3 and MLflow without any flag.
        ray_env = {**base_env, **storage.radae_env(), "MLFLOW_TRACKING_URI": mlflow_uri, **optuna_env}
        ray_log = state_dir / "ray.log"
        ray_log_start = ray_log.stat().st_size if ray_log.exists() else 0
        record("ray", _spawn(cmd, ray_env, ray_log))
        if optuna_env:
            record("optuna", _start_optuna_dashboard(optuna_env, base_env, state_dir))

        # Ready once the gateway created the bucket (or found it in the data dir from an earlier start).
        _wait(lambda: seaweed.ensure_bucket(storage), "SeaweedFS S3 server", procs["s3"], state_dir / "s3.log", 120)
        _wait(lambda: _http_ok(f"{mlflow_uri}/health"), "MLflow server", procs["mlflow"], state_dir / "mlflow.log", 120)
        token = token_path.read_text()
        for attempt in range(1, RAY_START_ATTEMPTS + 1):
            # The dashboard can answer before the CLI's own check that the node registered with the GCS:
            # ready only once the CLI reported the node started.
            try:
                _wait(
                    lambda since=ray_log_start: (
                        RAY_STARTED in _log_since(ray_log, since)
                        and _http_ok(f"http://127.0.0.1:{ports['dashboard']}/api/version", token)
                    ),
                    "Ray head",
                    procs["ray"],
                    ray_log,
                    120,
                )
                break
            except StackError:
                if attempt == RAY_START_ATTEMPTS or RAY_NODE_TIMEOUT not in _log_since(ray_log, ray_log_start):
                    raise
            # `ray start` gives its node 30 s (fixed in Ray 2.60) to register with the GCS, which an
            # overloaded machine can exceed: stop what is left of that head and start it again, same ports.
            print(
                f"Ray head: {RAY_NODE_TIMEOUT} (attempt {attempt} of {RAY_START_ATTEMPTS}); starting it again",
                file=sys.stderr,
            )
            stop_service(procs["ray"].pid, procs["ray"].pid, grace=5)
            ray_log_start = ray_log.stat().st_size
            record("ray", _spawn(cmd, ray_env, ray_log))
        if optuna_env:
            _wait(
                lambda: _http_ok(optuna_env["RADAE_OPTUNA_DASHBOARD"]),
                "optuna-dashboard",
                procs["optuna"],
                state_dir / "optuna.log",
                120,
            )
    except BaseException:
        stop(state_dir)
        raise
    env = {
        **storage.radae_env(),
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "RAY_ADDRESS": f"127.0.0.1:{ports['ray']}",
        "RAY_DASHBOARD": f"http://127.0.0.1:{ports['dashboard']}",
        "RAY_USAGE_STATS_ENABLED": "0",
        **ray_auth,
        **optuna_env,
    }
    write_private(state_dir / "env", "".join(f"export {k}={v}\n" for k, v in env.items()))
    state["env"] = {k: v for k, v in env.items() if k not in CREDENTIAL_ENV}
    (state_dir / "state.json").write_text(json.dumps(state, indent=2))
    return state


def _spawn_mlflow(state_dir: Path, storage: StorageSettings, port: int, base_env: dict[str, str]) -> subprocess.Popen:
    """The MLflow server (SQLite in the state dir, artifacts proxied to S3); the S3 credentials as ``AWS_*``
    in its environment only."""
    env = {**base_env, **storage.server_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [
        _bin("mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{state_dir / 'mlflow.db'}",
        "--artifacts-destination",
        storage.uri("mlflow"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return _spawn(cmd, env, state_dir / "mlflow.log")


def restart_mlflow(state_dir: Path, down_for: float = 0.0, timeout: float = 120) -> int:
    """Kill the stack's MLflow server (SIGKILL, as a crash would), wait ``down_for`` s and start it again
    on its port with the same SQLite store; returns the new PID once ``/health`` answers."""
    state_dir = state_dir.resolve()
    state = json.loads((state_dir / "state.json").read_text())
    old = state["services"]["mlflow"]
    stop_service(int(old["pid"]), int(old["pgid"]), grace=0)
    time.sleep(down_for)
    env = load_env(state_dir)
    storage = StorageSettings.from_env(env)
    base_env = {
        **{k: v for k, v in os.environ.items() if k not in CREDENTIAL_ENV},
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    port = int(state["ports"]["mlflow"])
    proc = _spawn_mlflow(state_dir, storage, port, base_env)
    state["services"]["mlflow"] = {"pid": proc.pid, "pgid": proc.pid, "log": str(state_dir / "mlflow.log")}
    (state_dir / "state.json").write_text(json.dumps(state, indent=2))
    _wait(lambda: _http_ok(f"http://127.0.0.1:{port}/health"), "MLflow server", proc, state_dir / "mlflow.log", timeout)
    return proc.pid


def restart_s3(state_dir: Path, timeout: float = 120) -> int:
    """Start the stack's SeaweedFS S3 server again (killing it first if it still runs) on its ports, with
    the same data dir and credentials; returns the new PID. Its objects are on disk, so every bucket
    object written before is still there."""
    state_dir = state_dir.resolve()
    state = json.loads((state_dir / "state.json").read_text())
    old = state["services"]["s3"]
    stop_service(int(old["pid"]), int(old["pgid"]), grace=5)
    storage = StorageSettings.from_env(load_env(state_dir))
    base_env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_ENV}
    weed = seaweed.command(
        _bin("weed"),
        Path(state["s3_data_dir"]),
        state_dir / "identities.json",
        int(state["ports"]["s3"]),
        state["s3_ports"],
    )
    proc = _spawn(weed, base_env, state_dir / "s3.log")
    state["services"]["s3"] = {"pid": proc.pid, "pgid": proc.pid, "log": str(state_dir / "s3.log")}
    (state_dir / "state.json").write_text(json.dumps(state, indent=2))
    _wait(lambda: seaweed.ensure_bucket(storage), "SeaweedFS S3 server", proc, state_dir / "s3.log", timeout)
    return proc.pid


# Services `python -m cluster.stack restart NAME` starts again on their own.
RESTARTABLE = {"s3": restart_s3, "mlflow": restart_mlflow}


def _optuna_env(state_dir: Path, port: int) -> dict[str, str]:
    return {"RADAE_OPTUNA_DB": str(state_dir / "optuna.db"), "RADAE_OPTUNA_DASHBOARD": f"http://127.0.0.1:{port}"}


def _start_optuna_dashboard(optuna_env: dict[str, str], base_env: dict[str, str], state_dir: Path) -> subprocess.Popen:
    """optuna-dashboard on loopback over the stack's Optuna SQLite file (every sweep's study, by sweep id)."""
    import optuna

    # optuna-dashboard does not create the schema of a new file (it exits "no such table"): the stack does.
    optuna.storages.RDBStorage(f"sqlite:///{optuna_env['RADAE_OPTUNA_DB']}")
    port = optuna_env["RADAE_OPTUNA_DASHBOARD"].rsplit(":", 1)[1]
    cmd = [
        _bin("optuna-dashboard"),
        f"sqlite:///{optuna_env['RADAE_OPTUNA_DB']}",
        "--host",
        "127.0.0.1",
        "--port",
        port,
    ]
    return _spawn(cmd, base_env, state_dir / "optuna.log")


def load_env(state_dir: Path) -> dict[str, str]:
    """The ``KEY=VALUE`` pairs of ``<state-dir>/env`` (what ``source .stack/env`` exports)."""
    out = {}
    for line in (state_dir / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        out[key] = value
    return out


def auth_headers(env: dict[str, str]) -> dict[str, str]:
    """HTTP headers with the stack's Ray token (``RAY_AUTH_TOKEN_PATH`` of ``env``), for Ray's job API."""
    path = env.get("RAY_AUTH_TOKEN_PATH")
    return {"Authorization": f"Bearer {Path(path).read_text().strip()}"} if path else {}


def stop(state_dir: Path) -> list[str]:
    """Stop the recorded process groups (Ray first); returns the services stopped."""
    path = state_dir / "state.json"
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    stopped = []
    for name in ("ray", "optuna", "mlflow", "s3"):
        svc = state["services"].get(name)
        if svc:
            stop_service(int(svc["pid"]), int(svc["pgid"]))
            stopped.append(name)
    if state.get("ray_temp_dir"):
        shutil.rmtree(state["ray_temp_dir"], ignore_errors=True)
    path.unlink()
    return stopped


def status(state_dir: Path) -> dict[str, Any]:
    path = state_dir / "state.json"
    if not path.exists():
        return {}
    state = json.loads(path.read_text())
    return {
        name: {"pgid": s["pgid"], "alive": group_alive(s["pgid"]), "rss_mib": round(tree_rss_mib(s["pid"]))}
        for name, s in state["services"].items()
    }


def stack_listeners(state_dir: Path) -> list[procfs.Listener]:
    """Every listening socket of every process of the stack's trees (services, Ray workers, job drivers)."""
    state = json.loads((state_dir / "state.json").read_text())
    return procfs.listeners(sorted({p for s in state["services"].values() for p in tree(int(s["pid"]))}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cluster.stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("command", choices=("start", "stop", "status", "sockets", "restart"))
    p.add_argument("service", nargs="?", choices=sorted(RESTARTABLE), help="restart: the service to start again")
    p.add_argument("--state-dir", type=Path, default=Path(".stack"), help="pids, logs, env file (default .stack)")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs the Ray head (each Ray node) offers")
    p.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="Ray nodes on this host, all on loopback: the head and NODES-1 more with their own CPUs "
        "and a resource node<i> each (default 1)",
    )
    p.add_argument("--bucket", default="radae", help="S3 bucket to create")
    p.add_argument(
        "--s3-data-dir",
        type=Path,
        default=None,
        help="where the S3 server keeps its objects, kept across stops (default <state-dir>/s3-data)",
    )
    p.add_argument(
        "--optuna-dashboard", action="store_true", help="also start optuna-dashboard on <state-dir>/optuna.db"
    )
    args = p.parse_args(argv)
    if args.command == "start":
        try:
            state = start(
                args.state_dir,
                args.num_cpus,
                args.bucket,
                optuna_dashboard=args.optuna_dashboard,
                s3_data_dir=args.s3_data_dir,
                nodes=args.nodes,
            )
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        env = state["env"]
        print(
            f"stack up: S3 {env['RADAE_S3_ENDPOINT']} (bucket {env['RADAE_S3_BUCKET']}, data in {state['s3_data_dir']}), MLflow {env['MLFLOW_TRACKING_URI']}, "
            f"Ray {env['RAY_ADDRESS']} ({state['nodes']} node{'s' * (state['nodes'] > 1)}, dashboard {env['RAY_DASHBOARD']})"
            + (f", optuna-dashboard {env['RADAE_OPTUNA_DASHBOARD']}" if "RADAE_OPTUNA_DASHBOARD" in env else "")
            + f"\nnext: source {args.state_dir}/env"
        )
    elif args.command == "restart":
        if not args.service or not (args.state_dir / "state.json").exists():
            print(
                f"error: restart needs a service ({', '.join(sorted(RESTARTABLE))}) of a stack in {args.state_dir}",
                file=sys.stderr,
            )
            return 2
        pid = RESTARTABLE[args.service](args.state_dir)
        note = " (same data dir and credentials: every object is still there)" if args.service == "s3" else ""
        print(f"restarted {args.service}: pid {pid}{note}")
    elif args.command == "stop":
        print(f"stopped: {', '.join(stop(args.state_dir)) or 'nothing was running'}")
    elif args.command == "sockets":
        print("\n".join(str(item) for item in stack_listeners(args.state_dir)))
    else:
        print(json.dumps(status(args.state_dir), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
