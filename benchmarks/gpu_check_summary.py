"""summary.json of benchmarks/gpu_check.sh: every stage's status and wall time, the figures the
stages wrote (bench.json, train.json, grid.json, pytest_junit.xml), the environment, and on a GPU
the speed targets of docs/speed.md with whether each was met. Exit status 1 if any stage did not
finish ok (so the shell script's exit status says it too)."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

# docs/speed.md: the targets on one H100/H200 (ratios in steps/s of the same device).
TARGETS = {
    "ratio_radae_over_plain": (">=", 8.0),
    "ratio_packed_over_plain": (">=", 50.0),
    "eval_protocol_s": ("<", 60.0),
    "fid_s": ("<", 10.0),
}
BENCH_KEYS = (
    "device", "torch", "data", "quick", "plain_steps_per_s", "radae_steps_per_s", "packed", "pack_size",
    "packed_model_steps_per_s", "ratio_radae_over_plain", "ratio_packed_over_plain", "pgd_over_fgsm_cost",
    "peak_memory_mb", "eval_protocol_s", "eval_protocol", "fid_s", "fid",
)  # fmt: skip
GRID_KEYS = (
    "device", "configurations", "pack_size", "packs", "epochs", "steps_per_epoch", "grid_wall_s",
    "model_steps_per_s_incl_validation", "members_ok", "members_diverged", "step_mode", "data",
)  # fmt: skip


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def pytest_counts(path: Path) -> dict[str, Any] | None:
    """tests/failures/errors/skipped and the failing test names from a JUnit XML file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    cases = list(root.iter("testcase"))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["not_passed"] = [
        f"{c.get('classname')}::{c.get('name')} ({child.tag})"
        for c in cases for child in c if child.tag in ("failure", "error", "skipped")
    ]  # fmt: skip
    return counts


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine()}
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            env["device"] = torch.cuda.get_device_name(0)
            env["cuda"] = torch.version.cuda
    except Exception as err:  # noqa: BLE001 - reported, not fatal
        env["torch"] = f"not importable: {err}"
    try:
        env["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        env["nvidia_smi"] = None
    return env


def targets(bench: dict[str, Any] | None, on_gpu: bool) -> dict[str, Any]:
    out = {}
    for key, (op, limit) in TARGETS.items():
        value = (bench or {}).get(key)
        met = None if value is None or not on_gpu else (value >= limit if op == ">=" else value < limit)
        out[key] = {"value": value, "target": f"{op} {limit:g}", "met": met}
    if not on_gpu:
        out["note"] = "targets are for one H100/H200; not judged on the CPU"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mode", required=True, choices=("gpu", "cpu"))
    p.add_argument("--dry-run", type=int, default=0)
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--budget", type=int, required=True)
    a = p.parse_args(argv)
    stages = []
    for path in sorted((a.work / "stages").glob("*.json"), key=lambda q: q.stat().st_mtime):
        st = read_json(path) or {"name": path.stem, "status": "unreadable record"}
        cmd = path.with_suffix(".cmd")
        st["command"] = cmd.read_text().strip() if cmd.exists() else None
        stages.append(st)
    bench, grid, train = (read_json(a.out / f"{n}.json") for n in ("bench", "grid", "train"))
    env = environment()
    on_gpu = a.mode == "gpu" and bool(env.get("cuda_available"))
    summary = {
        "mode": a.mode + (" (dry run)" if a.dry_run else ""),
        "environment": env,
        "data_dir": a.data_dir,
        "budget_s": a.budget,
        "stages": stages,
        "all_ok": bool(stages) and all(s.get("status") == "ok" for s in stages),
        "total_wall_s": round(sum(float(s.get("wall_s") or 0) for s in stages), 1),
        "imports": read_json(a.work / "logs" / "imports.json") if a.dry_run else None,
        "pytest_gpu": pytest_counts(a.out / "pytest_junit.xml"),
        "bench": {k: bench.get(k) for k in BENCH_KEYS} if bench else None,
        "targets": targets(bench, on_gpu),
        "train": (train or {}).get("summary"),
        "grid": {k: grid.get(k) for k in GRID_KEYS} if grid else None,
    }
    (a.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [f"{'stage':<9}{'status':<9}{'wall s':>8}"] + [
        f"{s.get('name', '?'):<9}{s.get('status', '?'):<9}{float(s.get('wall_s') or 0):>8.1f}" for s in stages
    ]
    if bench:

        def num(key: str, unit: str) -> str:
            v = bench.get(key)
            return "n/a" if v is None else f"{v:.2f}{unit}"

        lines.append(f"(b)/(a) {num('ratio_radae_over_plain', 'x')}, (c)/(a) x{bench.get('pack_size')} "
                     f"{num('ratio_packed_over_plain', 'x')}, evaluation protocol {num('eval_protocol_s', ' s')}, "
                     f"FID {num('fid_s', ' s')}")  # fmt: skip
    if grid:
        lines.append(
            f"grid: {grid['configurations']} configurations in {grid['grid_wall_s']:.1f} s, {grid['members_ok']} ok"
        )
    print("\n".join(lines))
    print(f"summary: {a.out / 'summary.json'}")
    return 0 if summary["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
