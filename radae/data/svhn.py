"""SVHN (cropped digits): ``train_32x32.mat`` and ``test_32x32.mat``, 32x32 RGB.

Each .mat holds ``X`` uint8 (32, 32, 3, N) and ``y`` (N, 1) with labels 1-10, where 10 is the
digit 0; it becomes label 0 here. The ``extra`` set is not used. Accepted in a base folder itself
or in ``svhn/`` or ``SVHN/``; torchvision downloads into ``svhn/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radae.data.base import DATASETS, DataError, DatasetInfo, DatasetSource, RawData

_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 in 0-9 from one SVHN .mat file."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path), variable_names=("X", "y"))
    except Exception as err:  # scipy raises ValueError, OSError, TypeError, MatReadError ... on bad files
        raise DataError(f"cannot read data file {path} as a MATLAB .mat file: {err}") from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"data file {path} lacks the variables X and y of an SVHN .mat file")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"data file {path}: X has shape {x.shape}, expected (32, 32, 3, N)")
    if x.shape[3] != y.shape[0]:
        raise DataError(f"data file {path}: {x.shape[3]} images but {y.shape[0]} labels")
    if x.dtype != np.uint8:
        raise DataError(f"data file {path}: X is {x.dtype}, expected uint8")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise DataError(f"data file {path}: labels span {y.min()}-{y.max()}, expected 1-10")
    labels = y.astype(np.int64) % 10  # 10 -> 0
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), labels


@DATASETS.register("svhn")
class SVHN(DatasetSource):
    info = DatasetInfo("svhn", (3, 32, 32), 10)
    folders = ("", "svhn", "SVHN")
    download_url = "http://ufldl.stanford.edu/housenumbers/"

    def find(self, directory: Path) -> dict[str, Path] | None:
        files = {part: directory / name for part, name in _FILES.items()}
        return files if all(p.is_file() for p in files.values()) else None

    def describe(self) -> str:
        return " and ".join(_FILES.values())

    def read(self, files: dict[str, Path]) -> RawData:
        train_images, train_labels = read_svhn_mat(files["train"])
        test_images, test_labels = read_svhn_mat(files["test"])
        return RawData(train_images, train_labels, test_images, test_labels)

    def download(self, root: Path) -> None:
        import torchvision.datasets

        for split in ("train", "test"):
            torchvision.datasets.SVHN(str(root / "svhn"), split=split, download=True)
