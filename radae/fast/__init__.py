"""Speed (issue 5): the CUDA-graph training step and packed trials (docs/speed.md).

- :mod:`radae.fast.graph_step`: step mode ``graph`` of :mod:`radae.trainsteps` (importing it
  registers the mode) and :func:`make_train_step` (the step of ``cfg.train.step_mode``).
- :mod:`radae.fast.packed` / :mod:`radae.fast.packed_train`: several robust-autoencoder trials of
  one architecture trained together with ``torch.func.vmap`` (:func:`train_packed`,
  :class:`PackConfig`); per-trial results, metrics and checkpoints stay separate.
- :mod:`radae.fast.functional`, :mod:`radae.fast.adam`: the eq. 9 objective and Adam as pure
  functions of stacked tensors, which the packed trainer vmaps.

``train_packed`` is imported on first use: :mod:`radae.trainsteps` imports this package to
register the graph step, and ``packed_train`` imports :mod:`radae.trainer`, which imports
:mod:`radae.trainsteps`.
"""

from typing import Any

# radae.trainsteps imports radae.fast.graph_step at its end; importing it first lets
# ``import radae.fast`` (or radae.fast.packed) work when the trainer was not imported before.
import radae.trainsteps  # noqa: F401,I001
from radae.fast.graph_step import GraphStep, make_optimizer, make_train_step
from radae.fast.packed import PackConfig, PackedModels, check_packable

__all__ = ["GraphStep", "PackConfig", "PackedModels", "check_packable", "make_optimizer", "make_train_step", "train_packed"]


def __getattr__(name: str) -> Any:
    if name == "train_packed":
        from radae.fast.packed_train import train_packed

        return train_packed
    raise AttributeError(f"module 'radae.fast' has no attribute {name!r}")
