"""What every dataset shares: the error type, the static info, the tensors and the registry.

A dataset is a :class:`DatasetSource` subclass registered in :data:`DATASETS` by name. It knows
its image shape (:class:`DatasetInfo`, no I/O), the sub-folder layouts its raw files may sit in,
how to check and read those files into uint8 arrays (:class:`RawData`), and how torchvision
downloads them. :mod:`radae.data.sources` searches the locations and builds the :class:`Splits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radae.registry import Registry


class DataError(ValueError):
    """Data that cannot be found or read; the message names every place tried or the bad file."""


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset, as the models see it after padding / cropping."""

    name: str
    image_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    # Latent-attack targets: a test image of another class (True), or any other test image (False:
    # CelebA, whose labels are only an attribute for the downstream classifier; method.md).
    class_targets: bool = True


@dataclass(frozen=True)
class RawData:
    """Arrays as read from disk, already shaped (N, C, H, W) uint8 with int64 labels.

    ``val_*`` is None for datasets without an official validation partition; the validation
    split is then carved from the end of the training set (see :mod:`radae.data`).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    val_images: np.ndarray | None = None
    val_labels: np.ndarray | None = None


class Split:
    """One split held as uint8 images (N, C, H, W) and int64 labels (N,) on one device.

    Images stay uint8 (4x less memory than float32, which matters for CelebA); :meth:`get`
    converts just the rows a batch needs to float32 in [0, 1].
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise DataError(f"split images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
            raise DataError(
                f"split labels must be int64 ({images.shape[0]},), got {labels.dtype} {tuple(labels.shape)}"
            )
        if labels.device != images.device:
            raise DataError(f"split images on {images.device} but labels on {labels.device}")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        return (
            f"Split(images={tuple(self.images.shape)} uint8, labels={tuple(self.labels.shape)}, device={self.device})"
        )

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str | None) -> Split:
        """This split on ``device`` (self when already there; None keeps the device)."""
        if device is None or torch.device(device) == self.device:
            return self
        return Split(self.images.to(device), self.labels.to(device))

    def get(self, idx: torch.Tensor | slice) -> torch.Tensor:
        """Images ``idx`` as float32 in [0, 1] on this split's device: ``images[idx] / 255``."""
        if isinstance(idx, torch.Tensor):
            idx = idx.to(self.device)
        return self.images[idx].to(torch.float32).div_(255.0)

    def float(self) -> torch.Tensor:
        """Every image as float32 in [0, 1] (N, C, H, W)."""
        return self.get(slice(None))


@dataclass(frozen=True)
class Splits:
    """Train / validation / test splits of one dataset, where the files came from and its info."""

    train: Split
    val: Split
    test: Split
    info: DatasetInfo
    source: str

    def to(self, device: torch.device | str | None) -> Splits:
        return Splits(self.train.to(device), self.val.to(device), self.test.to(device), self.info, self.source)

    def __repr__(self) -> str:
        return (
            f"Splits({self.info.name}: train {len(self.train)}, val {len(self.val)}, test {len(self.test)}, "
            f"{self.info.image_shape}, on {self.train.device}, from {self.source})"
        )


class DatasetSource:
    """How one dataset is found and read. Subclasses set the class attributes and two methods.

    ``folders`` are the sub-folders of a base directory tried in order ("" is the directory
    itself), ``system_dirs`` the well-known places checked after the user's, ``download_url``
    a URL whose host is probed before a torchvision download is attempted.
    """

    info: DatasetInfo
    folders: tuple[str, ...] = ("",)
    system_dirs: tuple[Path, ...] = ()
    download_url: str = ""

    def find(self, directory: Path) -> dict[str, Path] | None:
        """The raw files in ``directory`` (role -> path), or None when they are not all there."""
        raise NotImplementedError

    def describe(self) -> str:
        """The files :meth:`find` looks for, for the error listing what was tried."""
        raise NotImplementedError

    def read(self, files: dict[str, Path]) -> RawData:
        """Read and check the files; anything unreadable raises :class:`DataError` naming the file."""
        raise NotImplementedError

    def prepare(self, raw: RawData, resize_mode: str) -> RawData:
        """Bring what :meth:`read` returned to :attr:`info`'s image shape (``resize_mode``: the
        ``data.resize`` setting, for datasets whose files are not stored at that shape)."""
        return raw

    def download(self, root: Path) -> None:
        """Download the raw files with torchvision under ``root`` (a ``find`` candidate afterwards)."""
        raise NotImplementedError


DATASETS: Registry[type[DatasetSource]] = Registry("dataset")


def get_source(name: str) -> DatasetSource:
    """The registered source of dataset ``name``; unknown names raise :class:`DataError` listing the known."""
    try:
        return DATASETS.get(name)()
    except KeyError as err:
        raise DataError(err.args[0]) from None


def dataset_info(name: str) -> DatasetInfo:
    """Image shape (C, H, W) and number of classes of dataset ``name``, without any I/O."""
    return get_source(name).info
