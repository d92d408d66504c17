"""MNIST and FashionMNIST: 28x28 IDX files brought to the paper's 32x32 by ``data.resize``
(bilinear resize by default, or 2 px of zero padding; :mod:`radae.data.resize`).

Accepted names: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``, in a base
folder itself or in ``mnist/``, ``MNIST/raw/`` (torchvision's layout), and the same for
FashionMNIST with ``fashion-mnist/``, ``FashionMNIST/raw/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radae.data.base import DATASETS, DataError, DatasetInfo, DatasetSource, RawData
from radae.data.idx import read_idx
from radae.data.resize import resize

# The development and CI machines keep an MNIST copy in a data folder beside the checkout; for an
# installed package that path simply does not exist.
_REPO_ROOT = Path(__file__).resolve().parents[2]

_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@DATASETS.register("mnist")
class MNIST(DatasetSource):
    info = DatasetInfo("mnist", (1, 32, 32), 10)
    folders = ("", "mnist", "MNIST/raw")
    system_dirs = (_REPO_ROOT.parent / "shared" / "data" / "mnist",)
    download_url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    torchvision_class = "MNIST"

    def find(self, directory: Path) -> dict[str, Path] | None:
        files = {}
        for role, stem in _FILES.items():
            found = next((p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()), None)
            if found is None:
                return None
            files[role] = found
        return files

    def describe(self) -> str:
        return "train/t10k images-idx3 and labels-idx1 -ubyte[.gz]"

    def read(self, files: dict[str, Path]) -> RawData:
        arrays = {}
        for part in ("train", "test"):
            images = read_idx(files[f"{part}_images"], ndim=3)
            labels = read_idx(files[f"{part}_labels"], ndim=1)
            if images.shape[1:] != (28, 28):
                raise DataError(f"data file {files[f'{part}_images']} holds {images.shape[1:]} images, expected 28x28")
            if len(images) != len(labels):
                raise DataError(
                    f"data files {files[f'{part}_images']} ({len(images)} images) and "
                    f"{files[f'{part}_labels']} ({len(labels)} labels) do not match"
                )
            if labels.size and labels.max() >= self.info.num_classes:
                raise DataError(f"data file {files[f'{part}_labels']} holds label {labels.max()}, expected 0-9")
            arrays[f"{part}_images"] = images[:, None]
            arrays[f"{part}_labels"] = labels.astype(np.int64)
        return RawData(**arrays)

    def prepare(self, raw: RawData, resize_mode: str) -> RawData:
        """28x28 -> 32x32 by ``data.resize`` (``bilinear``: the paper's resize; ``pad``: zero frame)."""
        size = self.info.image_shape[-1]
        train = resize(raw.train_images[:, 0], resize_mode, size)[:, None]
        test = resize(raw.test_images[:, 0], resize_mode, size)[:, None]
        return RawData(train, raw.train_labels, test, raw.test_labels)

    def download(self, root: Path) -> None:
        import torchvision.datasets

        # One call fetches all four files into root/<class>/raw/.
        getattr(torchvision.datasets, self.torchvision_class)(str(root), train=True, download=True)


@DATASETS.register("fashion-mnist")
class FashionMNIST(MNIST):
    info = DatasetInfo("fashion-mnist", (1, 32, 32), 10)
    folders = ("", "fashion-mnist", "FashionMNIST/raw")
    # The Debian package dataset-fashion-mnist installs the four .gz files here.
    system_dirs = (Path("/usr/share/datasets/fashion-mnist"),)
    download_url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    torchvision_class = "FashionMNIST"
