"""CelebA (aligned faces): center crop 140, resize to 64x64 RGB, the official partition.

Files: ``img_align_celeba/*.jpg``, ``list_eval_partition.txt`` (``000001.jpg 0`` per line;
0 train, 1 validation, 2 test) and, optionally, ``list_attr_celeba.txt``. Labels are the
binary ``Male`` attribute (1 male, 0 not) when the attribute file is there, else all 0; the
paper's latent attack picks a random other image as target on CelebA, so labels only matter for
the downstream classifier. Accepted in a base folder itself or in ``celeba/`` (torchvision's
layout) or ``CelebA/``. Images are stored uint8: the full set is ~2.4 GB at 64x64.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from radae.data.base import DATASETS, DataError, DatasetInfo, DatasetSource, RawData

CROP = 140
SIZE = 64
LABEL_ATTRIBUTE = "Male"
_PARTS = {"0": "train", "1": "val", "2": "test"}


def load_face(path: Path) -> np.ndarray:
    """One aligned face, center-cropped to 140x140 and resized to 64x64: uint8 (3, 64, 64).

    The crop offsets round like torchvision's ``CenterCrop``; PIL's bilinear resize filters
    over the whole source footprint when shrinking, like ``Resize(64, antialias=True)``.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"cannot read image file {path}: {err}") from None
    width, height = img.size
    if width < CROP or height < CROP:
        raise DataError(f"image file {path} is {width}x{height}, smaller than the {CROP}x{CROP} center crop")
    left, top = round((width - CROP) / 2.0), round((height - CROP) / 2.0)
    face = img.crop((left, top, left + CROP, top + CROP)).resize((SIZE, SIZE), Image.BILINEAR)
    return np.asarray(face, dtype=np.uint8).transpose(2, 0, 1)


def read_partition(path: Path) -> dict[str, list[str]]:
    """Image names per split ("train", "val", "test") from ``list_eval_partition.txt``."""
    parts: dict[str, list[str]] = {name: [] for name in _PARTS.values()}
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read data file {path}: {err}") from None
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in _PARTS:
            raise DataError(f"data file {path} line {number}: expected '<image>.jpg 0|1|2', got {line!r}")
        parts[_PARTS[fields[1]]].append(fields[0])
    for name, images in parts.items():
        if not images:
            raise DataError(f"data file {path} lists no {name} images")
    return parts


def read_labels(path: Path) -> dict[str, int]:
    """Image name -> 0/1 value of the ``Male`` attribute from ``list_attr_celeba.txt``."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read data file {path}: {err}") from None
    # Line 1: the image count; line 2: the 40 attribute names; then "<image> -1 1 ..." rows.
    names = lines[1].split() if len(lines) > 1 else []
    if LABEL_ATTRIBUTE not in names:
        raise DataError(f"data file {path} has no {LABEL_ATTRIBUTE!r} column in its header line")
    column = names.index(LABEL_ATTRIBUTE) + 1
    labels = {}
    for number, line in enumerate(lines[2:], 3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1 or fields[column] not in ("1", "-1"):
            raise DataError(f"data file {path} line {number}: expected an image name and {len(names)} values of +-1")
        labels[fields[0]] = int(fields[column] == "1")
    return labels


@DATASETS.register("celeba")
class CelebA(DatasetSource):
    info = DatasetInfo("celeba", (3, SIZE, SIZE), 2, class_targets=False)
    folders = ("", "celeba", "CelebA")
    download_url = "https://drive.google.com/"

    def find(self, directory: Path) -> dict[str, Path] | None:
        images, partition = directory / "img_align_celeba", directory / "list_eval_partition.txt"
        if not (images.is_dir() and partition.is_file()):
            return None
        files = {"images": images, "partition": partition}
        if (directory / "list_attr_celeba.txt").is_file():
            files["attributes"] = directory / "list_attr_celeba.txt"
        return files

    def describe(self) -> str:
        return "img_align_celeba/ and list_eval_partition.txt"

    def read(self, files: dict[str, Path]) -> RawData:
        parts = read_partition(files["partition"])
        labels = read_labels(files["attributes"]) if "attributes" in files else None
        arrays = {}
        for name, images in parts.items():
            arrays[f"{name}_images"] = self._load_images(files["images"], images)
            if labels is None:
                arrays[f"{name}_labels"] = np.zeros(len(images), dtype=np.int64)
            else:
                missing = [image for image in images if image not in labels]
                if missing:
                    raise DataError(
                        f"data file {files['attributes']} has no row for {missing[0]} ({len(missing)} missing)"
                    )
                arrays[f"{name}_labels"] = np.array([labels[image] for image in images], dtype=np.int64)
        return RawData(**arrays)

    @staticmethod
    def _load_images(folder: Path, names: list[str]) -> np.ndarray:
        out = np.empty((len(names), 3, SIZE, SIZE), dtype=np.uint8)

        def fill(i: int) -> None:
            out[i] = load_face(folder / names[i])

        # JPEG decoding releases the GIL, so threads speed up the 200k-image load.
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(fill, range(len(names))))
        return out

    def download(self, root: Path) -> None:
        import torchvision.datasets

        # Google Drive download through gdown; usually refused by its quota, hence the error list.
        torchvision.datasets.CelebA(str(root), split="all", download=True)
