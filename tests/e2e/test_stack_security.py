"""The local stack is reachable from this machine only, and only with its token.

A job holding a Ray actor and a running task is submitted (so the GCS, raylet, agents, job
supervisor, driver, an actor and task workers all exist); the kernel's socket tables
(``/proc/net/tcp{,6}``, ``udp{,6}``) joined with ``/proc/<pid>/fd`` of every process in the
stack's trees must show each listening socket on a loopback address. No traffic is sent to any
other address; ``ss -ltnp`` must agree for the S3 server (SeaweedFS: master, volume, filer, S3 and their
gRPC ports, metrics, admin). The Ray head must also refuse requests without the stack's token, and the
S3 server any credentials but the stack's.
"""

import dataclasses
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from cluster import stack
from radae.store.settings import StorageSettings

pytestmark = pytest.mark.e2e
RAY = str(Path(sys.executable).parent / "ray")

HOLD_JOB = """
import time
import ray

ray.init()

@ray.remote
class Holder:
    def ping(self):
        return 1

holder = Holder.remote()
ray.get(holder.ping.remote())

@ray.remote
def hold():
    time.sleep(30)

pending = hold.remote()
print("holding", flush=True)
ray.get(pending)
"""


def test_every_stack_socket_is_loopback_and_the_head_needs_the_token(live_stack, tmp_path, measurements):
    live = live_stack
    env_file, token_file = live["state_dir"] / "env", Path(live["env"]["RAY_AUTH_TOKEN_PATH"])
    for path in (env_file, token_file, live["state_dir"] / "identities.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert live["env"]["RAY_AUTH_MODE"] == "token" and len(token_file.read_text().strip()) >= 32

    (tmp_path / "hold.py").write_text(textwrap.dedent(HOLD_JOB))
    proc = subprocess.run(
        [
            RAY,
            "job",
            "submit",
            "--address",
            live["env"]["RAY_DASHBOARD"],
            "--no-wait",
            "--working-dir",
            str(tmp_path),
            "--",
            "python",
            "hold.py",
        ],
        env=live["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Wait until the actor and the task run (their workers listen), then read the socket tables.
    deadline, found = time.time() + 90, []
    while time.time() < deadline:
        found = stack.stack_listeners(live["state_dir"])
        names = {item.command for item in found}
        if {"ray::Holder", "ray::hold"} <= names:
            break
        time.sleep(0.5)
    table = "\n".join(str(item) for item in found)
    measurements["stack_sockets"] = [str(item) for item in found]
    assert {"ray::Holder", "ray::hold", "gcs_server", "raylet", "weed"} <= {item.command for item in found}, table
    not_loopback = [str(item) for item in found if not item.loopback]
    assert not not_loopback, f"listening beyond loopback:\n{table}"
    # Every component of the S3 server listens on the port the stack chose for it, and on no other.
    state = live["state"]
    weed_ports = {item.port for item in found if item.command == "weed" and item.proto == "tcp"}
    assert weed_ports == {state["ports"]["s3"], *state["s3_ports"].values()}, table
    if shutil.which("ss"):  # the same from iproute2's view of the kernel tables
        weed_pid = state["services"]["s3"]["pid"]
        ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=30).stdout
        rows = [line.split() for line in ss.splitlines() if f'"weed",pid={weed_pid},' in line]
        measurements["s3_sockets_ss"] = [row[3] for row in rows]
        assert {int(row[3].rsplit(":", 1)[1]) for row in rows} == weed_ports, ss
        assert all(re.fullmatch(r"127\.0\.0\.1:\d+", row[3]) for row in rows), ss

    # The S3 server admits the stack's credentials only.
    settings = StorageSettings.from_env(live["env"])
    settings.boto3_client().head_bucket(Bucket=settings.bucket)
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        dataclasses.replace(settings, access_key="radaewrongkey0").boto3_client().list_objects_v2(
            Bucket=settings.bucket
        )

    # Without the token the head refuses the job API; with it, it answers.
    url = f"{live['env']['RAY_DASHBOARD']}/api/jobs/"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code in (401, 403)
    with urllib.request.urlopen(urllib.request.Request(url, headers=stack.auth_headers(live["env"])), timeout=10) as ok:
        assert ok.status == 200
    no_token = {k: v for k, v in live["env"].items() if not k.startswith("RAY_AUTH_")}
    no_token["HOME"] = str(tmp_path)  # no ~/.ray/auth_token to fall back on
    denied = subprocess.run(
        [RAY, "job", "list", "--address", live["env"]["RAY_DASHBOARD"]],
        env=no_token,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert denied.returncode != 0 and "auth" in (denied.stdout + denied.stderr).lower(), denied.stdout + denied.stderr
