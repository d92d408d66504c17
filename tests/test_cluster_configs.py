"""Every shipped cluster file is valid: the launcher YAML against Ray's own schema, the manifests' structure; the
local stack refuses a node count it cannot start."""

import json
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

from cluster import ray_nodes, stack

CLUSTER = Path(__file__).parents[1] / "cluster"
MANIFESTS = sorted((CLUSTER / "k8s").glob("*.yaml"))


def load_all(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def test_launcher_yaml_matches_the_schema_shipped_with_ray():
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load((CLUSTER / "ray-cluster-gpu.yaml").read_text())
    jsonschema.validate(config, schema)
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    gpu = [t for t in types.values() if t["resources"].get("GPU", 0) >= 1]
    assert gpu and all(t["max_workers"] <= config["max_workers"] for t in gpu)
    assert ray.__version__ in config["docker"]["image"]
    # A broken config must fail the same validation (the test can fail).
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**config, "available_node_types": {"x": {"resources": {"GPU": -1}}}}, schema)


def test_manifests_have_the_required_structure():
    docs = [d for p in MANIFESTS for d in load_all(p) if d["kind"] != "Kustomization"]
    kinds = {d["kind"] for d in docs}
    assert {"RayCluster", "Deployment", "Service", "Secret", "PersistentVolumeClaim", "Namespace", "Job"} <= kinds
    for d in docs:
        assert d.get("apiVersion") and d.get("kind") and d["metadata"].get("name"), d
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "radae", d["metadata"]["name"]
    kustomize = yaml.safe_load((CLUSTER / "k8s" / "kustomization.yaml").read_text())
    assert all((CLUSTER / "k8s" / r).exists() for r in kustomize["resources"])


def _containers(doc):
    if doc["kind"] == "RayCluster":
        spec = doc["spec"]
        pods = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
    elif doc["kind"] in ("Deployment", "Job"):
        pods = [doc["spec"]["template"]]
    else:
        return []
    return [c for pod in pods for c in pod["spec"]["containers"]]


def test_images_are_pinned_and_ports_agree_with_services():
    docs = [d for p in MANIFESTS for d in load_all(p)]
    secret_keys = {k for d in docs if d["kind"] == "Secret" for k in d["stringData"]}
    ports_by_app = {}
    for d in docs:
        for c in _containers(d):
            image = c["image"]
            assert ":" in image and not image.endswith(":latest"), image
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "radae-s3" and ref["key"] in secret_keys
        if d["kind"] == "Deployment":
            labels = d["spec"]["template"]["metadata"]["labels"]
            assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
            ports_by_app[labels["app"]] = {p["containerPort"] for c in _containers(d) for p in c.get("ports", [])}
    for svc in (d for d in docs if d["kind"] == "Service"):
        app = svc["spec"]["selector"]["app"]
        assert app in ports_by_app, f"service {svc['metadata']['name']} selects no deployment"
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports_by_app[app], (svc["metadata"]["name"], port)


def test_raycluster_matches_the_ray_version_and_the_services():
    (rc,) = [d for p in MANIFESTS for d in load_all(p) if d["kind"] == "RayCluster"]
    assert rc["apiVersion"] == "ray.io/v1" and rc["spec"]["rayVersion"] == ray.__version__
    for c in _containers(rc):
        assert f":{ray.__version__}" in c["image"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["RADAE_S3_ENDPOINT"] == "http://minio:9000" and env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert "AWS_SECRET_ACCESS_KEY" in env and env["AWS_SECRET_ACCESS_KEY"] is None  # from the Secret, never inline
    workers = rc["spec"]["workerGroupSpecs"]
    assert any(
        c["resources"]["limits"].get("nvidia.com/gpu") == "1"
        for g in workers
        for c in g["template"]["spec"]["containers"]
    )
    docs = [d for p in MANIFESTS for d in load_all(p)]
    services = {d["metadata"]["name"]: {p["port"] for p in d["spec"]["ports"]} for d in docs if d["kind"] == "Service"}
    assert 9000 in services["minio"] and 5000 in services["mlflow"]
    (mlflow,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow"]
    args = _containers(mlflow)[0]["args"]
    assert args[args.index("--port") + 1] == "5000" and args[args.index("--artifacts-destination") + 1].startswith(
        "s3://radae/"
    )


def test_stack_scripts_never_stop_every_ray_cluster():
    for script in CLUSTER.glob("*.sh"):
        text = script.read_text()
        assert "ray stop" not in text.replace("never `ray stop`", ""), script
        assert "-m cluster.stack" in text


def test_stack_ports_are_distinct_and_free():
    """The stack takes all its ports in one go (11: S3, MLflow, Ray GCS, dashboard, 7 Ray internals)."""
    import socket

    from cluster.stack import RAY_PORT_FLAGS, free_ports

    for _ in range(20):
        ports = free_ports(4 + len(RAY_PORT_FLAGS[2:]))
        assert len(set(ports)) == len(ports) == 11
    for port in ports:  # each is free to bind on loopback once returned
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_stop_reaches_descendants_in_other_process_groups(tmp_path):
    """Like a Ray worker (own process group) or job driver (own session): counted in memory, stopped with its service."""
    import os
    import sys
    import time

    from cluster import stack

    code = (
        "import subprocess, sys, time\n"
        "c = subprocess.Popen(['sleep', '120'], start_new_session=True)\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    log = tmp_path / "svc.log"
    proc = stack._spawn([sys.executable, "-c", code], dict(os.environ), log)
    deadline = time.time() + 30
    while not log.read_text().strip():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    child = int(log.read_text().split()[0])
    started = {pid: stack.start_time(pid) for pid in (child, proc.pid)}
    try:
        assert os.getpgid(child) != proc.pid and child in stack.tree(proc.pid)
        assert stack.tree_rss_mib(proc.pid) > stack.group_rss_mib(proc.pid)
        stack.stop_service(proc.pid, proc.pid, grace=5)
        proc.wait(timeout=5)
        assert stack.start_time(child) is None, "a descendant in its own group outlived stop"
    finally:
        for pid, t in started.items():  # only if still the process this test started
            if stack.start_time(pid) == t:
                os.kill(pid, 9)


def test_a_stack_needs_at_least_one_ray_node_and_the_node_holder_two(tmp_path, capsys):
    with pytest.raises(stack.StackError, match="--nodes must be at least 1, got 0"):
        stack.start(tmp_path / "state", nodes=0)
    assert not (tmp_path / "state").exists()  # refused before anything was created
    ports = [f"{flag}={9000 + i}" for i, flag in enumerate(ray_nodes.PORT_PARAMS)]
    with pytest.raises(SystemExit):
        ray_nodes.main(["--nodes", "1", "--num-cpus", "1", "--temp-dir", "/tmp/x", "--state-dir", "/tmp/x", *ports])
    assert "--nodes must be at least 2 (one node: ray start --head), got 1" in capsys.readouterr().err
