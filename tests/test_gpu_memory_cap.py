"""radae.sweep.packing.cap_gpu_memory on a real CUDA device (skipped without one).

Kept apart from tests/test_sweep_packing.py, which imports Optuna and Ray: the GPU machine has
neither, and benchmarks/gpu_check.sh runs every ``gpu`` test there.
"""

import pytest
import torch

from radae.sweep.packing import cap_gpu_memory


@pytest.mark.gpu
def test_memory_cap_limits_allocations_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    total = torch.cuda.get_device_properties(0).total_memory
    try:
        cap_gpu_memory(0.1)
        with pytest.raises(torch.cuda.OutOfMemoryError):
            torch.empty(int(total * 0.2), dtype=torch.uint8, device="cuda")
        ok = torch.empty(int(total * 0.05), dtype=torch.uint8, device="cuda")
        del ok
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
