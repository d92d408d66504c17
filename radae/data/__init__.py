"""Datasets by name, loaded once into uint8 tensors on the training device.

    from radae.data import load_dataset, dataset_info
    dataset_info("svhn")                      # DatasetInfo('svhn', image_shape=(3, 32, 32), num_classes=10)
    data = load_dataset(cfg.data, "cuda")     # Splits: .train .val .test .info .source
    x = data.train.get(idx)                   # float32 in [0, 1], (B, C, H, W), on cuda

Datasets and their preprocessing (paper appendix A.4), done once at load time on uint8:

- ``mnist``, ``fashion-mnist``: 28x28 grey brought to (1, 32, 32) by ``data.resize`` (bilinear resize, the
  paper's input, by default; or 2 px of zero padding per side), 10 classes.
- ``svhn``: (3, 32, 32), 10 classes (the .mat label 10 is the digit 0).
- ``celeba``: aligned faces center-cropped to 140x140, resized to (3, 64, 64); 2 classes, the
  ``Male`` attribute (all 0 when ``list_attr_celeba.txt`` is absent).

Splits (deterministic, no shuffling):

- test: the official test set.
- validation: CelebA's official partition; for the others the LAST ``data.val_size`` images of
  the official training set (MNIST: train 50,000 / val 10,000 / test 10,000).
- train: the rest; ``data.train_limit`` keeps only its first N images.

A ``data.data_dir`` the user names is the only folder used (DataError naming it when it lacks the
files). Without one, sources tried in order: ``$RADAE_DATA_DIR``, the dataset's system copies
(Debian's /usr/share/datasets/fashion-mnist; the development machines' MNIST copy beside the checkout),
``~/.cache/radae/data``, then a torchvision download into that cache when ``data.download``.
docs/data.md lists the accepted file layouts.
"""

from radae.data import celeba, mnist, svhn  # noqa: F401  (register the datasets)
from radae.data.base import DATASETS, DataError, DatasetInfo, DatasetSource, RawData, Split, Splits, dataset_info
from radae.data.sources import cache_dir, load_dataset, search_roots

__all__ = [
    "DATASETS",
    "DataError",
    "DatasetInfo",
    "DatasetSource",
    "RawData",
    "Split",
    "Splits",
    "cache_dir",
    "dataset_info",
    "load_dataset",
    "search_roots",
]
