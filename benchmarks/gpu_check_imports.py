"""Import every module benchmarks/gpu_check.sh runs, and say which fail: the GPU machine has no
ray, mlflow, boto3, optuna, pytorch_msssim or torch_fidelity (.library/device/KINDS.md), so none
of these may need them at import time.

    PYTHONPATH=benchmarks/offline_site:. GPU_CHECK_BLOCK=ray,mlflow,boto3,optuna,pytorch_msssim,torch_fidelity \\
        python benchmarks/gpu_check_imports.py          # prints JSON; exit 1 if any import failed

With ``GPU_CHECK_BLOCK`` set (benchmarks/offline_site/sitecustomize.py on PYTHONPATH), it first
checks that the blocked packages really are blocked, so a broken blocker cannot pass silently.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What the GPU machine lacks; gpu_check.sh blocks exactly these in --dry-run and --cpu-smoke.
MISSING_ON_GPU = ("ray", "mlflow", "boto3", "optuna", "pytorch_msssim", "torch_fidelity")
# Third-party packages the stages need (all in the GPU image's package list).
THIRD_PARTY = ("torch", "numpy", "scipy", "matplotlib", "yaml", "PIL", "pytest")
# radae modules the stages import (directly or through the scripts below).
MODULES = (
    "radae.train",
    "radae.trainer",
    "radae.trainsteps",
    "radae.fast",
    "radae.fast.packed_train",
    "radae.evaluate",
    "radae.fid",
    "radae.data",
    "radae.sweep.definition",
    "radae.sweep.packing",
)
SCRIPTS = ("benchmarks/throughput.py", "benchmarks/packed_grid.py")


def gpu_test_files() -> list[str]:
    """Test files holding a ``gpu``-marked test: the ones ``pytest -m gpu`` runs (gpu_check.sh lists them the same way)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py") if "mark.gpu" in p.read_text())


def import_path(rel: str) -> None:
    path = ROOT / rel
    spec = importlib.util.spec_from_file_location(f"_gpu_check_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def check() -> dict[str, object]:
    blocked = [name for name in os.environ.get("GPU_CHECK_BLOCK", "").split(",") if name]
    leaks = []
    for name in blocked:
        try:
            importlib.import_module(name)
            leaks.append(name)  # importable although blocked: the blocker is not active
        except ImportError:
            pass
    failures: dict[str, str] = {}
    targets = [*THIRD_PARTY, *MODULES, *SCRIPTS, *gpu_test_files()]
    for target in targets:
        try:
            import_path(target) if target.endswith(".py") else importlib.import_module(target)
        except Exception as err:  # noqa: BLE001 - every failure is reported by name
            failures[target] = "".join(traceback.format_exception_only(type(err), err)).strip()
    loaded = sorted(m for m in MISSING_ON_GPU if m in sys.modules)
    return {
        "blocked": blocked,
        "blocker_leaks": leaks,
        "checked": targets,
        "failures": failures,
        "loaded_but_missing_on_gpu": loaded,
        "ok": not failures and not leaks and not loaded,
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    result = check()
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["ok"] else 1)
