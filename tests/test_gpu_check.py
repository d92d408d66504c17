"""benchmarks/gpu_check.sh before any device time is spent: its dry run, its refusal of a missing
data folder, its summary, and that everything it runs imports without the packages the GPU machine
lacks (ray, mlflow, boto3, optuna, pytorch_msssim, torch_fidelity)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))
from gpu_check_imports import MISSING_ON_GPU  # noqa: E402
from throughput import pack_sizes  # noqa: E402

BLOCK = ",".join(MISSING_ON_GPU)


def blocked_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "RADAE_DATA_DIR", "GPU_CHECK_CPU")}
    env.update(PYTHONPATH=f"{ROOT / 'benchmarks' / 'offline_site'}:{ROOT}", GPU_CHECK_BLOCK=BLOCK, **extra)
    return env


def fake_mnist(folder: Path) -> Path:
    """The four MNIST file names (the dry run checks presence only; no stage reads them)."""
    folder.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (folder / f"{name}.gz").write_bytes(b"")
    return folder


def test_gpu_check_modules_import_with_the_gpu_machines_missing_packages_blocked():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check_imports.py")],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=blocked_env(),
    )  # fmt: skip
    result = json.loads(proc.stdout)
    assert proc.returncode == 0 and result["ok"], result["failures"] or result
    assert result["blocked"] == list(MISSING_ON_GPU) and not result["blocker_leaks"]
    assert {
        "radae.train",
        "radae.fid",
        "radae.sweep.definition",
        "benchmarks/packed_grid.py",
        "tests/test_fast.py",
    } <= set(result["checked"])


def test_the_blocker_blocks_what_it_names():
    """The check above can fail: under the blocker the sweep's Ray searcher does not import."""
    code = "import radae.sweep.searcher"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, env=blocked_env()
    )
    assert proc.returncode != 0 and "ray is blocked" in proc.stderr, proc.stderr[-1000:]


def test_dry_run_prints_the_plan_and_writes_a_summary(tmp_path):
    data = fake_mnist(tmp_path / "mnist")
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--data-dir", str(data)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**blocked_env(), "OUT": str(tmp_path / "out"), "GPU_CHECK_WORK": str(tmp_path / "work")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for stage in ("imports", "pytest", "bench", "train", "grid"):
        assert f"  {stage} " in proc.stdout
    assert "train.step_mode graph" in proc.stdout and "--pack 32,128" in proc.stdout
    assert "grid: 30 configurations" in proc.stdout and "imports (blocked" in proc.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["mode"] == "gpu (dry run)" and summary["imports"]["ok"] and summary["all_ok"]
    assert summary["data_dir"] == str(data.resolve())


def test_missing_data_stops_before_any_stage(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--data-dir", str(tmp_path / "empty")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env={**blocked_env(), "OUT": str(tmp_path / "out")},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no MNIST" in proc.stderr and "train-images-idx3-ubyte" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_summary_marks_a_failed_stage_and_exits_1(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "stages").mkdir(parents=True)
    out.mkdir()
    for name, status, rc in (("imports", "ok", 0), ("bench", "timeout", 124)):
        (work / "stages" / f"{name}.json").write_text(
            json.dumps({"name": name, "rc": rc, "wall_s": 1.5, "timeout_s": 9, "status": status})
        )
    (out / "bench.json").write_text(
        json.dumps(
            {"ratio_radae_over_plain": 9.0, "ratio_packed_over_plain": 20.0, "eval_protocol_s": 30.0, "fid_s": None}
        )
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check_summary.py"), "--mode", "cpu", "--work", str(work),
         "--out", str(out), "--data-dir", "d", "--budget", "60"],
        capture_output=True, text=True, timeout=120, env=blocked_env(),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())
    assert not s["all_ok"] and [st["status"] for st in s["stages"]] == ["ok", "timeout"] and s["total_wall_s"] == 3.0
    # on the CPU the GPU targets are reported, never judged
    assert s["targets"]["ratio_radae_over_plain"] == {"value": 9.0, "target": ">= 8", "met": None}


@pytest.mark.parametrize(("text", "sizes"), [("4", [4]), ("32,128", [32, 128])])
def test_pack_sizes_parse(text, sizes):
    assert pack_sizes(text) == sizes


@pytest.mark.parametrize("text", ["0", "32,32", "a,4", ""])
def test_pack_sizes_refuse_bad_input(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="--pack"):
        pack_sizes(text)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_mode_without_cuda_stops_before_any_stage(tmp_path):
    data = fake_mnist(tmp_path / "mnist")
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--data-dir", str(data)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**blocked_env(), "OUT": str(tmp_path / "out"), "GPU_CHECK_WORK": str(tmp_path / "work")},
    )  # fmt: skip
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr and "--cpu-smoke" in proc.stderr
    assert not list((tmp_path / "work" / "stages").glob("*.json"))


SHARED_MNIST = Path(os.environ.get("RADAE_MNIST_DIR") or ROOT.parent / "shared" / "data" / "mnist")


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST not found at {SHARED_MNIST}")
def test_packed_grid_trains_a_definitions_grid_in_packs(tmp_path):
    """benchmarks/packed_grid.py on a 2 x 2 grid in packs of 3: two packs (3, 1), every member trained in its own folder."""
    definition = tmp_path / "grid.yaml"
    definition.write_text(
        "name: g\nobjective: {mode: scalar}\nbase: {data.name: mnist}\n"
        "space:\n  loss.alpha: {type: grid, values: [0.5, 0.95]}\n  prior.num_modes: {type: grid, values: [1, 15]}\n"
    )
    out = tmp_path / "grid.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "packed_grid.py"), "--definition", str(definition), "--pack-size", "3",
         "--device", "cpu", "--epochs", "1", "--max-steps", "2", "--train-limit", "500", "--val-size", "100",
         "--data-dir", str(SHARED_MNIST), "--work-dir", str(tmp_path / "runs"), "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=blocked_env(OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["configurations"] == 4 and [p["size"] for p in r["packs"]] == [3, 1]
    assert all(p["status"] == "ok" and p["wall_s"] > 0 for p in r["packs"]) and r["grid_wall_s"] > 0
    assert [(m["loss.alpha"], m["prior.num_modes"]) for m in r["members"]] == [
        (0.5, 1),
        (0.5, 15),
        (0.95, 1),
        (0.95, 15),
    ]
    assert r["members_ok"] == 4 and all(m["epochs"] == 1 and m["best_val"] > 0 for m in r["members"])
    assert r["model_steps"] == 4 * 2 and r["steps_per_epoch"] == 2
    for i in range(4):
        summary = json.loads((tmp_path / "runs" / f"p{i:02d}" / "summary.json").read_text())
        assert summary["best_val"] == pytest.approx(r["members"][i]["best_val"])
