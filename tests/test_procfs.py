"""The one /proc reader (radae.store.procfs): process table, process trees, socket table; and the
cluster tooling stays out of the library."""

import ast
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from radae.store import procfs

ROOT = Path(__file__).parents[1]


def test_start_time_tells_a_live_process_from_a_gone_one():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = procfs.start_time(child.pid)
        assert started is not None and started >= procfs.start_time(os.getpid())
        assert child.pid in procfs.descendants(os.getpid()) and child.pid in procfs.processes()
    finally:
        child.kill()
        child.wait()
    assert procfs.start_time(child.pid) is None  # reaped: no such process (or a later one with another start time)


def test_a_zombie_is_not_alive():
    child = subprocess.Popen(["true"])
    deadline = time.time() + 10
    while procfs.read_stat(child.pid).state != "Z":  # exited, not yet reaped
        assert time.time() < deadline
        time.sleep(0.02)
    assert procfs.start_time(child.pid) is None and child.pid not in procfs.descendants(os.getpid())
    child.wait()


def test_listeners_reads_this_process_sockets_from_the_kernel_tables():
    with socket.socket() as tcp, socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp, socket.socket() as idle:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("::1", 0))
        idle.bind(("127.0.0.1", 0))  # bound, not listening: not a listener
        found = procfs.listeners([os.getpid()])
        mine = {(item.proto, item.address, item.port) for item in found}
        assert ("tcp", "127.0.0.1", tcp.getsockname()[1]) in mine and ("udp", "::1", udp.getsockname()[1]) in mine
        assert ("tcp", "127.0.0.1", idle.getsockname()[1]) not in mine
        assert all(item.loopback and item.pid == os.getpid() for item in found)
        assert str(next(i for i in found if i.proto == "udp")).startswith("udp [::1]:")


def _sources(folder: str):
    return [p for p in (ROOT / folder).rglob("*.py")]


def test_the_library_never_imports_the_cluster_tooling():
    for path in _sources("radae"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "cluster" or n.startswith("cluster.") for n in names), path


def test_proc_is_read_in_one_module():
    readers = [
        p.relative_to(ROOT).as_posix() for p in _sources("radae") + _sources("cluster") if '"/proc' in p.read_text()
    ]
    # radae/precision.py reads /proc/cpuinfo (CPU flags), not the process or socket tables.
    assert readers == ["radae/precision.py", "radae/store/procfs.py"]
