"""Numeric precision of the network forward passes, by name (``train.precision``, ``eval.precision``).

    check_precision("bf16", device, "train.precision")   # ConfigError before any work where unsupported
    with network_precision(model, "bf16", device):       # encoder/decoder forwards under autocast
        out = model.loss(x, generator)                    # the losses see float32 tensors

- ``fp32``: nothing changes (the default).
- ``bf16``: each forward pass of the model's ``encoder`` and ``decoder`` runs under
  ``torch.autocast(device_type, dtype=torch.bfloat16)`` and its output is cast back to float32.
  Matmuls and convolutions then run in bfloat16 (about 4x the fp32 matmul rate on one CPU core
  with ``avx512_bf16``), while parameters, gradients, Adam, and every loss and metric (MSE, the KS
  terms with their sorting and normal CDFs, the covariance terms, MS-SSIM, FID statistics in
  float64) stay float32: they run outside autocast, on float32 tensors.

Only the networks are switched, by setting an instance ``forward`` on the two modules for the
duration of the ``with`` block (parameter names and ``state_dict`` are untouched, checkpoints are
the same format in both precisions). A bf16 request on a device without bfloat16 support is
refused (:func:`check_precision`) instead of running slowly in emulation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from radae.config import ConfigError
from radae.registry import Registry

# CPU flags (``/proc/cpuinfo``) of the bfloat16 instructions oneDNN uses for bf16 matmuls.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class Precision:
    """``dtype``: the autocast dtype of the network forwards (None: plain float32)."""

    name: str
    dtype: torch.dtype | None


PRECISIONS: Registry = Registry("precision")
PRECISIONS.register("fp32")(Precision("fp32", None))
PRECISIONS.register("bf16")(Precision("bf16", torch.bfloat16))


@functools.cache
def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags of the first processor listed in ``path`` (empty where there is no such file)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 natively: CUDA by ``torch.cuda.is_bf16_supported``, the CPU
    by an ``avx512_bf16`` or ``amx_bf16`` flag."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return any(flag in cpu_flags() for flag in CPU_BF16_FLAGS)
    return False


def check_precision(name: str, device: torch.device | str, key: str) -> Precision:
    """The registered precision ``name``; :class:`ConfigError` naming ``key`` if unknown or unsupported on ``device``."""
    if name not in PRECISIONS:
        raise ConfigError(f"{key} {name!r} is unknown; known: {', '.join(PRECISIONS.names())}")
    precision = PRECISIONS.get(name)
    device = torch.device(device)
    if precision.dtype is torch.bfloat16 and not bf16_supported(device):
        where = (
            f"this CPU has none of the flags {', '.join(CPU_BF16_FLAGS)}"
            if device.type == "cpu"
            else f"torch reports no bfloat16 support on {device}"
        )
        raise ConfigError(f"{key} bf16 needs native bfloat16 support, but {where}; use {key} fp32")
    return precision


def _float_outputs(value):
    """``value`` with every floating tensor (also inside tuples and lists) cast to float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(_float_outputs(v) for v in value)
    return value


def _autocast_forward(module: nn.Module, device_type: str, dtype: torch.dtype) -> Callable:
    forward = type(module).forward.__get__(module)

    def run(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            out = forward(*args, **kwargs)
        return _float_outputs(out)

    return run


@contextmanager
def network_precision(model: nn.Module, name: str, device: torch.device | str) -> Iterator[nn.Module]:
    """Within the block, ``model.encoder`` and ``model.decoder`` forward under autocast at precision ``name``.

    ``fp32`` changes nothing. Every other module (losses, metrics, the caller's code) is untouched,
    and the networks' outputs are float32. Nested use is allowed (the inner block is a no-op).
    """
    precision = PRECISIONS.get(name)
    nets = [m for m in (getattr(model, "encoder", None), getattr(model, "decoder", None)) if m is not None]
    nets = [m for m in nets if "forward" not in vars(m)]  # already switched by an outer block
    if precision.dtype is None or not nets:
        yield model
        return
    device_type = torch.device(device).type
    for net in nets:
        net.forward = _autocast_forward(net, device_type, precision.dtype)
    try:
        yield model
    finally:
        for net in nets:
            del net.forward


def autocast(name: str, device: torch.device | str):
    """A ``torch.autocast`` context at precision ``name`` for code that is only network forwards
    (e.g. a feature network); ``fp32`` gives a no-op context."""
    precision = PRECISIONS.get(name)
    if precision.dtype is None:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=precision.dtype)
