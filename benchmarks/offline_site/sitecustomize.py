"""Make the GPU machine's missing packages missing here too: with this folder on PYTHONPATH and
``GPU_CHECK_BLOCK=ray,mlflow,...`` set, importing any of those top-level packages (or their
submodules) raises ImportError, as it does on the lent GPU machine, which has none of them
(.library/device/KINDS.md). Used by ``benchmarks/gpu_check.sh --dry-run``/``--cpu-smoke`` and
tests/test_gpu_check.py. Python imports ``sitecustomize`` at start-up from the first sys.path entry
holding it; PYTHONPATH entries come before site-packages, so this one wins. Without the variable it
does nothing.
"""

import importlib.abc
import os
import sys

BLOCKED = frozenset(name for name in os.environ.get("GPU_CHECK_BLOCK", "").split(",") if name)


class _BlockFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".", 1)[0] in BLOCKED:
            raise ImportError(
                f"{fullname} is blocked (GPU_CHECK_BLOCK: not installed on the GPU machine)", name=fullname
            )
        return None


if BLOCKED:
    sys.meta_path.insert(0, _BlockFinder())
