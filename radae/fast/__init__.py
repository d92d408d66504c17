"""Packed trials (docs/speed.md): several robust-autoencoder trials of one architecture
trained together with ``torch.func.vmap``; per-trial results, metrics and checkpoints stay separate.

- :mod:`radae.fast.packed`: :class:`PackedModels` (stacked parameters, one vmapped step for all),
  :class:`PackConfig`, :func:`check_packable`.
- :mod:`radae.fast.packed_train`: :func:`train_packed`, :func:`radae.trainer.train` for a pack (one
  :class:`radae.runfolder.RunFolder` per member), and :class:`PackedGraph` (the pack's step as one
  CUDA graph).
- :mod:`radae.fast.functional`: one member's eq. 9 from its parameters and hyper-parameter
  tensors, calling the model's own objective (:func:`radae.models.rae.rae_objective`), attack and
  prior; the packed trainer vmaps it. :mod:`radae.fast.adam`: Adam over stacked tensors.

The single-trial CUDA-graph step is step mode ``graph`` of :mod:`radae.trainsteps`.
"""

from radae.fast.packed import PackConfig, PackedModels, check_packable
from radae.fast.packed_train import PackedGraph, train_packed

__all__ = ["PackConfig", "PackedGraph", "PackedModels", "check_packable", "train_packed"]
