"""The local stack (SeaweedFS S3, MLflow, Ray head) for the end-to-end sweep tests, started once.

Measurements (wall times, peak memory of the stack's processes, which include every Ray job,
driver and trial worker) go to ``runs/sweep-e2e.json``.
"""

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from cluster import stack

ROOT = Path(__file__).parents[2]
REPORT = ROOT / "runs" / "sweep-e2e.json"


def mnist_dir() -> Path | None:
    for candidate in (os.environ.get("RADAE_DATA_DIR"), ROOT.parent / "shared" / "data" / "mnist"):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate).resolve()
    return None


class MemorySampler(threading.Thread):
    """Samples the summed RSS of the stack's process trees every 0.5 s (Ray workers and job drivers
    run in process groups of their own: the services' groups alone miss them)."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.peak_mib, self.stop_event = pids, 0.0, threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            self.peak_mib = max(self.peak_mib, sum(stack.tree_rss_mib(p) for p in self.pids))
            self.stop_event.wait(0.5)


@pytest.fixture(scope="session")
def measurements():
    data = {}
    yield data
    REPORT.parent.mkdir(exist_ok=True)
    old = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    REPORT.write_text(json.dumps({**old, **data}, indent=2) + "\n")


def live_env(state_dir: Path) -> dict[str, str]:
    """The environment a user has after ``source <state-dir>/env``: credentials only as the stack's RADAE_S3_*
    (never AWS_* from the caller's environment), and this checkout's radae first on the path."""
    env = {**{k: v for k, v in os.environ.items() if k not in stack.CREDENTIAL_ENV}, **stack.load_env(state_dir)}
    # Drivers run as `python sweeps/<script>.py` import this checkout's radae, not another editable install.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return env


def assert_stopped(state: dict, descendants: dict[int, float | None]) -> None:
    """No process of the stack's groups, and none of its recorded descendants, outlived ``stack.stop``."""
    assert not any(stack.group_alive(s["pgid"]) for s in state["services"].values()), "stack processes left behind"
    left = [p for p, t in descendants.items() if t is not None and stack.start_time(p) == t]
    assert not left, f"stack descendants left behind (own process groups): {left}"


def stack_descendants(state: dict) -> dict[int, float | None]:
    """Every process of the stack's trees now, with its start time (to tell a reused PID apart)."""
    return {p: stack.start_time(p) for s in state["services"].values() for p in stack.tree(s["pid"])}


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory, measurements):
    """Start the stack on free loopback ports; stop exactly its process groups afterwards."""
    if mnist_dir() is None:
        pytest.skip("real MNIST not found (set RADAE_DATA_DIR or put it in ../shared/data/mnist)")
    state_dir = tmp_path_factory.mktemp("stack")
    t0 = time.time()
    state = stack.start(state_dir, num_cpus=2)
    measurements["stack_start_seconds"] = round(time.time() - t0, 1)
    sampler = MemorySampler([s["pid"] for s in state["services"].values()])
    sampler.start()
    try:
        yield {
            "state": state,
            "env": live_env(state_dir),
            "state_dir": state_dir,
            "work": tmp_path_factory.mktemp("sweeps"),
        }
    finally:
        sampler.stop_event.set()
        sampler.join()
        measurements["stack_peak_rss_mib"] = round(sampler.peak_mib)
        descendants = stack_descendants(state)
        stack.stop(state_dir)
        assert_stopped(state, descendants)
        shutil.rmtree(state_dir / "mlflow.db", ignore_errors=True)
