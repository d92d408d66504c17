"""Every core module imports on its own (no import cycles whichever is first) and pulls in no
orchestration library: the trainer and evaluator must run with torch alone (style rule 12)."""

import pkgutil
import subprocess
import sys

import pytest

import radae

WRAPPERS = ("radae.sweep", "radae.store", "radae.analysis")  # the layers around the core (docs/architecture.md)
CORE = sorted(m.name for m in pkgutil.walk_packages(radae.__path__, "radae.") if not m.name.startswith(WRAPPERS))
ENTRY_POINTS = ["radae.fast", "radae.trainsteps", "radae.trainer", "radae.train", "radae.evaluate", "radae.models"]


@pytest.mark.parametrize("first", ENTRY_POINTS)
def test_core_imports_in_any_order_without_orchestration_libraries(first):
    script = (
        "import importlib, sys\n"
        f"importlib.import_module({first!r})\n"
        f"for name in {CORE!r}:\n"
        "    importlib.import_module(name)\n"
        "banned = sorted(m for m in ('ray', 'mlflow', 'boto3', 'optuna') if m in sys.modules)\n"
        "assert not banned, f'core imported {banned}'\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_core_module_list_is_not_empty():
    assert {"radae.trainer", "radae.evaluate", "radae.losses", "radae.objective"} <= set(CORE)
    assert not [m for m in CORE if m.startswith(WRAPPERS)]
