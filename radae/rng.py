"""The random state a checkpoint stores, so a resumed run draws the numbers the uninterrupted one would.

    state = rng_state({"perm": perm_gen, "noise": noise_gen}, device)   # into the checkpoint
    set_rng_state(state, {"perm": perm_gen, "noise": noise_gen}, device)  # on resume

The state holds each named generator's state, the global torch RNG and, on CUDA, the device's RNG.
Used by :func:`radae.trainer.train` (one run) and :func:`radae.fast.packed_train.train_packed`
(one set of generators per member).
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch


def rng_state(generators: dict[str, torch.Generator], device: torch.device) -> dict[str, Any]:
    """The state of ``generators`` (by name), the global torch RNG and, on CUDA, ``device``'s RNG."""
    state = {name: gen.get_state() for name, gen in generators.items()}
    state["torch"] = torch.get_rng_state()
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator], device: torch.device) -> None:
    """Restore :func:`rng_state`'s ``state``; see :func:`_device_mismatch_seed` for a change of device type."""
    for name, gen in generators.items():
        stored = state[name]
        if stored.numel() == gen.get_state().numel():
            gen.set_state(stored)
        else:
            gen.manual_seed(_device_mismatch_seed(stored))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _device_mismatch_seed(stored: torch.Tensor) -> int:
    """A seed derived from a generator state saved on another device type (``train.device`` may change on resume).

    A CPU generator's state (Mersenne Twister, 5056 bytes) cannot be loaded into a CUDA one (Philox seed
    and offset, 16 bytes) or back, so such a resume reseeds the generator from a hash of the stored state:
    deterministic for the checkpoint, though not the stream the original device would have continued.
    """
    return int.from_bytes(hashlib.sha256(stored.cpu().numpy().tobytes()).digest()[:8], "little") >> 1
