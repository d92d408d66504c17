"""Several Ray nodes on this host, all on loopback: a head and ``--nodes - 1`` more, held by this process.

    python -m cluster.ray_nodes --nodes 2 --num-cpus 1 --temp-dir T --state-dir S --port P --dashboard-port D ...

Ray's single-host mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which keeps every Ray socket on
127.0.0.1) refuses ``ray start --address`` for a second node; Ray's own multi-node helper
:class:`ray.cluster_utils.Cluster` starts several nodes in that mode. This process owns them: it
starts the head on the stack's ports (the head's flags of ``ray start``), adds the other nodes
with their own CPUs, a resource ``node<i>`` and a temp dir ``<temp-dir>/n<i>`` each, writes ``<state-dir>/nodes.json`` (node id
and raylet PID of every node), prints ``Ray runtime started.`` and waits; SIGTERM shuts the nodes
down. Every node but the head gets a cache of its own (``XDG_CACHE_HOME=<temp-dir>/n<i>/cache``, its
processes inherit it), as a separate machine has: what its trials need that is not in the job's working
dir (the sweep's FID network) must come from S3, not from the head's files. ``RAY_TMPDIR`` is set to the stack's temp dir first, so Ray's "current cluster" address file
goes there, not to ``/tmp/ray``, where other clusters' bare ``ray.init()`` would find it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

# `ray start` flags of the head's ports -> the RayParams names Cluster takes.
PORT_PARAMS = {
    "--port": "gcs_server_port",
    "--dashboard-port": "dashboard_port",
    "--ray-client-server-port": "ray_client_server_port",
    "--node-manager-port": "node_manager_port",
    "--object-manager-port": "object_manager_port",
    "--metrics-export-port": "metrics_export_port",
    "--dashboard-agent-listen-port": "dashboard_agent_listen_port",
    "--dashboard-agent-grpc-port": "metrics_agent_port",
    "--runtime-env-agent-port": "runtime_env_agent_port",
}
STARTED = "Ray runtime started."


@contextlib.contextmanager
def environ(**values: str):
    """This process's environment with ``values`` set, restored on exit (for the processes started inside)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.ray_nodes", description=__doc__)
    p.add_argument("--nodes", type=int, required=True, help="nodes in all, the head included (>= 2)")
    p.add_argument("--num-cpus", type=int, required=True, help="CPUs of each node")
    p.add_argument("--temp-dir", required=True, help="Ray's temp dir (short: unix socket paths)")
    p.add_argument("--state-dir", type=Path, required=True, help="where nodes.json goes")
    for flag in PORT_PARAMS:
        p.add_argument(flag, type=int, required=True)
    args = p.parse_args(argv)
    if args.nodes < 2:
        p.error(f"--nodes must be at least 2 (one node: ray start --head), got {args.nodes}")
    os.environ["RAY_TMPDIR"] = args.temp_dir
    Path(args.temp_dir, "ray").mkdir(parents=True, exist_ok=True)
    # Imported after RAY_TMPDIR is set (Ray reads it when the cluster starts).
    from ray.cluster_utils import Cluster

    head_args = {
        "num_cpus": args.num_cpus,
        "node_ip_address": "127.0.0.1",
        "include_dashboard": True,
        "dashboard_host": "127.0.0.1",
        "temp_dir": args.temp_dir,
        **{param: getattr(args, flag.lstrip("-").replace("-", "_")) for flag, param in PORT_PARAMS.items()},
    }
    cluster = Cluster(initialize_head=True, head_node_args=head_args, shutdown_at_exit=True)
    # `ray start` records the head's address in <temp dir>/ray_current_cluster; Cluster does not. A job's
    # supervisor resolves its driver's RAY_ADDRESS ("auto") from that file, and without it fell back to any
    # Ray cluster running on the host: another stack's, whose token this one's drivers do not hold.
    Path(args.temp_dir, "ray_current_cluster").write_text(cluster.address)
    nodes = [{"name": "head", "node_id": cluster.head_node.node_id, "head": True}]
    workers = []
    for i in range(2, args.nodes + 1):
        # A temp dir of its own (inside the head's, removed with it): sharing the head's session folder, a
        # node's loss took the job's working dir (runtime_resources) from under the head's driver.
        cache = Path(args.temp_dir, f"n{i}", "cache")
        cache.mkdir(parents=True, exist_ok=True)
        with environ(XDG_CACHE_HOME=str(cache)):  # the raylet (hence its workers) inherits it
            node = cluster.add_node(
                num_cpus=args.num_cpus,
                resources={f"node{i}": 1},
                node_ip_address="127.0.0.1",
                temp_dir=os.path.join(args.temp_dir, f"n{i}"),
            )
        workers.append(node)
        nodes.append({"name": f"node{i}", "node_id": node.node_id, "head": False, "cache_dir": str(cache)})
    for info, node in zip(nodes, [cluster.head_node, *workers], strict=True):
        info["raylet_pid"] = node.all_processes["raylet"][0].process.pid
    (args.state_dir / "nodes.json").write_text(json.dumps(nodes, indent=2))
    # Blocked only now: Ray's processes, started above, keep the default SIGTERM.
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    print(STARTED, flush=True)
    signal.sigwait(stop)
    cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
