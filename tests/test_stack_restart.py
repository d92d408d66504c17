"""One stopped service of the local stack is started again alone (python -m cluster.stack restart s3)."""

import json
import subprocess
import sys

import pytest

from cluster import seaweed, stack
from cluster.stack import free_port, group_alive, stop_service
from radae.store.preflight import check_storage
from radae.store.settings import StorageSettings


@pytest.fixture
def stopped_s3(tmp_path):
    """A stack state dir whose S3 server stopped (its process is gone) while another service runs."""
    settings = StorageSettings(
        bucket="radae", endpoint=f"http://127.0.0.1:{free_port()}", access_key="radaekey", secret_key="s3cret"
    )
    (tmp_path / "env").write_text("".join(f"export {k}={v}\n" for k, v in settings.radae_env().items()))
    seaweed.write_identities(tmp_path / "identities.json", settings.access_key, settings.secret_key)
    dead = subprocess.Popen(["true"], start_new_session=True)
    dead.wait()
    alive = subprocess.Popen(["sleep", "300"], start_new_session=True)
    state = {
        "services": {
            "s3": {"pid": dead.pid, "pgid": dead.pid, "log": str(tmp_path / "s3.log")},
            "other": {"pid": alive.pid, "pgid": alive.pid, "log": str(tmp_path / "other.log")},
        },
        "ports": {"s3": int(settings.endpoint.rsplit(":", 1)[1])},
        "s3_ports": seaweed.component_ports(taken={int(settings.endpoint.rsplit(":", 1)[1])}),
        "s3_data_dir": str(tmp_path / "s3-data"),
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    yield tmp_path, settings
    for svc in json.loads((tmp_path / "state.json").read_text())["services"].values():
        if group_alive(svc["pgid"]):
            stop_service(int(svc["pid"]), int(svc["pgid"]), grace=2)


def test_start_names_the_stopped_service_and_restart_brings_it_back(stopped_s3):
    state_dir, settings = stopped_s3
    problem = check_storage(settings, timeout=2)
    assert "restart only it: python -m cluster.stack restart s3" in problem
    with pytest.raises(stack.StackError, match=r"s3 stopped: restart it with python -m cluster.stack restart s3"):
        stack.start(state_dir, 1, "radae")
    done = subprocess.run(
        [sys.executable, "-m", "cluster.stack", "restart", "s3", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "restarted s3" in done.stdout and "every object is still there" in done.stdout
    assert check_storage(settings, timeout=5) is None  # endpoint and bucket answer again, same credentials
