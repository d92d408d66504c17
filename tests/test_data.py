"""radae.data: IDX/.mat/jpg readers, source order, splits, and the real MNIST/FashionMNIST files."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from radae.config import ConfigError, DataConfig, RunConfig, apply_overrides
from radae.data import DataError, Split, dataset_info, load_dataset
from radae.data.celeba import load_face
from radae.data.idx import read_idx, write_idx
from radae.data.resize import RESIZERS, bilinear, bilinear_float, linear_weights
from radae.data.sources import resolve_folder
from radae.names import check_names

# $RADAE_MNIST_DIR: where a checkout without ../shared keeps MNIST (benchmarks/gpu_check.sh sets it on the GPU machine).
SHARED_MNIST = Path(
    os.environ.get("RADAE_MNIST_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
)
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated_sources(tmp_path, monkeypatch):
    """No user data dir and an empty download cache, so only what a test sets up is found."""
    monkeypatch.delenv("RADAE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def write_mnist(folder: Path, n_train: int = 12, n_test: int = 4, gz: bool = True, seed: int = 0) -> dict:
    """Tiny MNIST-format IDX files under ``folder``; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{stem}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{stem}-labels-idx1-ubyte{suffix}", labels)
        arrays[stem] = (images, labels)
    return arrays


# --- IDX ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_idx_round_trip(tmp_path, name):
    array = np.random.default_rng(1).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    np.testing.assert_array_equal(read_idx(path, ndim=3), array)


def test_idx_header_is_big_endian(tmp_path):
    path = write_idx(tmp_path / "labels", np.zeros(258, dtype=np.uint8))
    assert path.read_bytes()[:8] == bytes([0, 0, 8, 1, 0, 0, 1, 2])


def test_truncated_idx_names_the_file_and_sizes(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.ones((4, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte is truncated.*needs 3152 bytes.*has 3052"):
        read_idx(path, ndim=3)


def test_truncated_gzip_names_the_file(tmp_path):
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.arange(4 * 28 * 28).reshape(4, 28, 28) % 251)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz is a corrupt or truncated gzip"):
        read_idx(path, ndim=3)


def test_bad_magic_and_wrong_rank_are_refused(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"PK\x03\x04" + bytes(100)))
    with pytest.raises(DataError, match=r"bad.gz is not an IDX file"):
        read_idx(bad, ndim=3)
    labels = write_idx(tmp_path / "labels", np.zeros(10, dtype=np.uint8))
    with pytest.raises(DataError, match=r"labels has 1 dimensions, expected 3"):
        read_idx(labels, ndim=3)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"cannot read data file .*nothing"):
        read_idx(tmp_path / "nothing", ndim=1)


# --- sources and splits -------------------------------------------------------------------


def test_dataset_info_without_io():
    assert dataset_info("mnist").image_shape == (1, 32, 32) and dataset_info("mnist").num_classes == 10
    assert dataset_info("fashion-mnist").image_shape == (1, 32, 32) and dataset_info("fashion-mnist").num_classes == 10
    assert dataset_info("svhn").image_shape == (3, 32, 32) and dataset_info("svhn").num_classes == 10
    assert dataset_info("celeba").image_shape == (3, 64, 64) and dataset_info("celeba").num_classes == 2


def test_unknown_dataset_lists_known():
    with pytest.raises(DataError, match=r"unknown dataset 'cifar'; known: celeba, fashion-mnist, mnist, svhn"):
        dataset_info("cifar")
    with pytest.raises(DataError, match=r"known: celeba, fashion-mnist, mnist, svhn"):
        load_dataset(DataConfig(name="cifar"))


def test_missing_everywhere_lists_every_location(tmp_path, monkeypatch):
    monkeypatch.setenv("RADAE_DATA_DIR", str(tmp_path / "env"))
    (tmp_path / "env").mkdir()
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(name="svhn", download=False))
    message = str(err.value)
    assert "no svhn data found" in message
    assert f"1. $RADAE_DATA_DIR {tmp_path / 'env'}: the folder is empty" in message
    assert f"2. download cache {tmp_path / 'cache' / 'radae' / 'data'}" in message
    assert "3. torchvision download: skipped (data.download is false)" in message
    write_mnist(tmp_path / "env" / "other", n_train=12)  # not empty, but no svhn files
    with pytest.raises(DataError, match=rf"1. \$RADAE_DATA_DIR {tmp_path / 'env'}: none of {tmp_path / 'env'}, "):
        load_dataset(DataConfig(name="svhn", download=False))


@pytest.mark.parametrize("state", ["missing", "empty", "other files"])
def test_named_data_dir_is_never_replaced(tmp_path, monkeypatch, state):
    # A copy every fallback would find: $RADAE_DATA_DIR holds MNIST. The named folder must still win or fail.
    write_mnist(tmp_path / "env", n_train=12)
    monkeypatch.setenv("RADAE_DATA_DIR", str(tmp_path / "env"))
    mine = tmp_path / "mine"
    if state != "missing":
        mine.mkdir()
    if state == "other files":
        (mine / "notes.txt").write_text("not mnist")
    why = {"missing": "no such folder", "empty": "the folder is empty", "other files": "none of"}[state]
    cfg = DataConfig(name="mnist", data_dir=str(mine), val_size=2)
    with pytest.raises(DataError, match=rf"--data-dir \(data.data_dir\) {mine}: {why}") as err:
        load_dataset(cfg)
    assert str(tmp_path / "env") not in str(err.value)
    with pytest.raises(DataError, match=r"--data-dir \(data.data_dir\)"):
        resolve_folder(cfg)
    assert resolve_folder(DataConfig(name="mnist")) == str(tmp_path / "env")  # no folder named: the search order


@pytest.mark.parametrize("layout", ["", "mnist", "MNIST/raw"])
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_layouts_padding_and_splits(tmp_path, layout, gz):
    arrays = write_mnist(tmp_path / layout, n_train=12, n_test=4, gz=gz)
    data = load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path), val_size=3, resize="pad"))
    assert data.source == str(tmp_path / layout)
    assert (len(data.train), len(data.val), len(data.test)) == (9, 3, 4)
    train_images, train_labels = arrays["train"]
    # 28x28 is padded with 2 zero pixels per side: the image sits at [2:30, 2:30].
    np.testing.assert_array_equal(data.train.images[:, 0, 2:30, 2:30].numpy(), train_images[:9])
    np.testing.assert_array_equal(data.val.images[:, 0, 2:30, 2:30].numpy(), train_images[9:])  # the last val_size
    np.testing.assert_array_equal(data.test.images[:, 0, 2:30, 2:30].numpy(), arrays["t10k"][0])
    assert data.train.images[:, :, :2].sum() == 0 and data.train.images[:, :, :, 30:].sum() == 0
    assert data.val.labels.tolist() == train_labels[9:].tolist() and data.val.labels.dtype == torch.int64


def skimage_resize_by_hand(image: np.ndarray, size: int) -> np.ndarray:
    """skimage.transform.resize(image / 255, (size, size)) for enlarging, pixel by pixel in float64.

    order=1 (bilinear), mode='reflect' (numpy's 'reflect': the pixel beyond an edge mirrors the one
    inside it, -1 -> 1), no anti-aliasing when enlarging, output pixel centres mapped to input pixel
    centres: s = (o + 0.5) * n_in / n_out - 0.5.
    """
    src = np.pad(image.astype(np.float64) / 255.0, 1, mode="reflect")  # index k of image -> k + 1 here
    h, w = image.shape
    out = np.empty((size, size))
    for o in range(size):
        for p in range(size):
            r, c = (o + 0.5) * h / size - 0.5, (p + 0.5) * w / size - 0.5
            r0, c0 = int(np.floor(r)), int(np.floor(c))
            tr, tc = r - r0, c - c0
            a, b = src[r0 + 1, c0 + 1], src[r0 + 1, c0 + 2]
            d, e = src[r0 + 2, c0 + 1], src[r0 + 2, c0 + 2]
            out[o, p] = (1 - tr) * ((1 - tc) * a + tc * b) + tr * ((1 - tc) * d + tc * e)
    return out


def test_bilinear_resize_matches_skimage_by_hand_and_scipy():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    images[0, 0, :] = 255  # ink on the border, where mirroring matters
    ref = np.stack([skimage_resize_by_hand(im, 32) for im in images])
    ours = bilinear_float(torch.from_numpy(images).double() / 255.0).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    # scipy.ndimage.zoom with these settings is what skimage.transform.resize calls (skimage >= 0.19).
    from scipy import ndimage

    zoomed = np.stack([ndimage.zoom(im / 255.0, 32 / 28, order=1, mode="mirror", grid_mode=True) for im in images])
    np.testing.assert_allclose(ours, zoomed, atol=1e-12)
    # Stored as uint8, rounded: every value is a multiple of 1/256 grey level, exact in float32 too.
    np.testing.assert_array_equal(bilinear(images), np.rint(ref * 255).astype(np.uint8))
    # F.interpolate(align_corners=False) agrees inside but clamps instead of mirroring on the border.
    interp = torch.nn.functional.interpolate(
        torch.from_numpy(images).double()[:, None] / 255, size=(32, 32), mode="bilinear", align_corners=False
    )[:, 0].numpy()
    np.testing.assert_allclose(interp[:, 1:-1, 1:-1], ref[:, 1:-1, 1:-1], atol=1e-12)
    assert np.abs(interp[0, 0] - ref[0, 0]).max() > 0.01


def test_linear_weights_by_hand():
    # 2 -> 4: s = (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25; -0.25 mixes in[-1] = in[1] (mirror) with 0.25.
    w = linear_weights(2, 4)
    expected = torch.tensor([[0.75, 0.25], [0.75, 0.25], [0.25, 0.75], [0.25, 0.75]], dtype=torch.float64)
    assert torch.equal(w, expected)
    assert torch.allclose(linear_weights(28, 32).sum(1), torch.ones(32, dtype=torch.float64))
    with pytest.raises(ValueError, match="enlarges only"):
        linear_weights(32, 28)


def test_resize_modes_and_their_config_field(tmp_path):
    assert DataConfig().resize == "bilinear" and "bilinear" in RESIZERS
    arrays = write_mnist(tmp_path, n_train=12, n_test=4)
    data = load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path), val_size=3))
    assert data.train.images.shape == (9, 1, 32, 32)
    np.testing.assert_array_equal(data.test.images[:, 0].numpy(), bilinear(arrays["t10k"][0]))
    flat = np.full((1, 28, 28), 77, dtype=np.uint8)
    assert (bilinear(flat) == 77).all()  # a constant image stays constant (mirrored borders, no dark frame)
    with pytest.raises(ConfigError, match="^data.resize 'nearest' is unknown; known: bilinear, pad$"):
        check_names(apply_overrides(RunConfig(), {"data.resize": "nearest"}))


def test_train_limit_and_val_size_checks(tmp_path):
    write_mnist(tmp_path / "fashion-mnist", n_train=12)
    data = load_dataset(DataConfig(name="fashion-mnist", data_dir=str(tmp_path), val_size=2, train_limit=5))
    assert (len(data.train), len(data.val)) == (5, 2)
    with pytest.raises(DataError, match=r"data.val_size \(12\) must be smaller than the 12 fashion-mnist training"):
        load_dataset(DataConfig(name="fashion-mnist", data_dir=str(tmp_path), val_size=12))


def test_data_dir_wins_over_env(tmp_path, monkeypatch):
    write_mnist(tmp_path / "mine", n_train=12)
    write_mnist(tmp_path / "env", n_train=20)
    monkeypatch.setenv("RADAE_DATA_DIR", str(tmp_path / "env"))
    assert len(load_dataset(DataConfig(name="mnist", val_size=2)).train) == 18
    assert len(load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path / "mine"), val_size=2)).train) == 10


def test_truncated_file_stops_the_search(tmp_path):
    write_mnist(tmp_path, n_train=12)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes())[:-3]))
    # Not silently replaced by a system copy: the bad file is named.
    with pytest.raises(DataError, match=rf"{labels} is truncated: header \(12,\) needs 20 bytes"):
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path), val_size=2))


def test_mismatched_counts_and_labels_are_refused(tmp_path):
    write_mnist(tmp_path, n_train=12)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(11, dtype=np.uint8))
    with pytest.raises(DataError, match=r"12 images\) and .*train-labels-idx1-ubyte.gz \(11 labels\) do not match"):
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path), val_size=2))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(12, 10, dtype=np.uint8))
    with pytest.raises(DataError, match=r"holds label 10, expected 0-9"):
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path), val_size=2))


def test_split_get_to_and_float():
    images = torch.tensor([[[[0, 255], [51, 102]]]], dtype=torch.uint8).repeat(3, 1, 1, 1)
    split = Split(images, torch.arange(3))
    x = split.get(torch.tensor([0, 2]))
    assert x.dtype == torch.float32 and x.shape == (2, 1, 2, 2)
    torch.testing.assert_close(x[0, 0], torch.tensor([[0.0, 1.0], [0.2, 0.4]]))
    assert split.float().shape == (3, 1, 2, 2) and split.to("cpu") is split
    with pytest.raises(DataError, match="uint8"):
        Split(images.float(), torch.arange(3))
    with pytest.raises(DataError, match="int64"):
        Split(images, torch.arange(2))


@pytest.fixture
def loopback_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving ``tmp_path / "served"``; yields (url, folder)."""
    import functools
    import http.server
    import threading

    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    server.shutdown()
    server.server_close()


def test_download_goes_through_torchvision_into_the_cache(tmp_path, monkeypatch, loopback_server):
    """The download path end to end, offline: torchvision fetches from a loopback mirror."""
    import hashlib

    import torchvision.datasets

    import radae.data.mnist

    url, served = loopback_server
    arrays = write_mnist(served, n_train=12, n_test=4)
    resources = [(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sorted(served.iterdir())]
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [url])
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources", resources)
    monkeypatch.setattr(radae.data.mnist.MNIST, "download_url", url)
    monkeypatch.setattr(radae.data.mnist.MNIST, "system_dirs", ())
    data = load_dataset(DataConfig(name="mnist", val_size=2, download=True))
    assert data.source == str(tmp_path / "cache" / "radae" / "data" / "MNIST" / "raw")
    np.testing.assert_array_equal(data.test.images[:, 0].numpy(), bilinear(arrays["t10k"][0]))
    # A second load finds the cached copy without downloading.
    monkeypatch.setattr(radae.data.mnist.MNIST, "download_url", "http://127.0.0.1:1/")
    assert load_dataset(DataConfig(name="mnist", val_size=2, download=False)).source == data.source


def test_unreachable_download_fails_fast_and_is_listed(tmp_path, monkeypatch):
    import time

    import radae.data.svhn

    monkeypatch.setattr(radae.data.svhn.SVHN, "download_url", "http://127.0.0.1:1/housenumbers/")  # nothing listens
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(name="svhn", download=True))
    assert time.monotonic() - start < 5
    cache = tmp_path / "cache" / "radae" / "data"
    assert f"2. torchvision download into {cache}: no network: 127.0.0.1:1 unreachable" in str(err.value)


# --- SVHN ---------------------------------------------------------------------------------


def write_svhn(folder: Path, n_train: int = 10, n_test: int = 4) -> dict:
    """Tiny SVHN .mat files in the real layout: X (32, 32, 3, N) uint8, y (N, 1) with 10 for 0."""
    import scipy.io

    rng = np.random.default_rng(2)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(n, 1)  # 1..10
        scipy.io.savemat(folder / f"{part}_32x32.mat", {"X": x, "y": y})
        arrays[part] = (x, y)
    return arrays


def test_svhn_mat_layout_labels_and_split(tmp_path):
    arrays = write_svhn(tmp_path / "svhn")
    data = load_dataset(DataConfig(name="svhn", data_dir=str(tmp_path), val_size=3))
    assert data.source == str(tmp_path / "svhn")
    assert (len(data.train), len(data.val), len(data.test)) == (7, 3, 4)
    x, y = arrays["train"]
    assert data.train.images.shape == (7, 3, 32, 32)
    # (H, W, C, N) -> (N, C, H, W): pixel (h=5, w=9, c=2) of image 1
    assert data.train.images[1, 2, 5, 9] == x[5, 9, 2, 1]
    np.testing.assert_array_equal(data.val.images.numpy(), x.transpose(3, 2, 0, 1)[7:])
    # label 10 is the digit 0; the others keep their value
    assert data.train.labels.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert data.val.labels.tolist() == [8, 9, 0] and y[9, 0] == 10


def test_svhn_truncated_mat_names_the_file(tmp_path):
    write_svhn(tmp_path)
    path = tmp_path / "test_32x32.mat"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match=rf"cannot read data file {path} as a MATLAB .mat file"):
        load_dataset(DataConfig(name="svhn", data_dir=str(tmp_path), val_size=3))


def test_svhn_mat_without_images_is_refused(tmp_path):
    import scipy.io

    write_svhn(tmp_path)
    scipy.io.savemat(
        tmp_path / "train_32x32.mat", {"X": np.zeros((28, 28, 1, 2), dtype=np.uint8), "y": np.ones((2, 1))}
    )
    with pytest.raises(DataError, match=r"train_32x32.mat: X has shape \(28, 28, 1, 2\), expected \(32, 32, 3, N\)"):
        load_dataset(DataConfig(name="svhn", data_dir=str(tmp_path), val_size=1))


# --- CelebA -------------------------------------------------------------------------------

CELEBA_PARTS = {"000001.jpg": 0, "000002.jpg": 0, "000003.jpg": 0, "000004.jpg": 0, "000005.jpg": 1, "000006.jpg": 2}
MALE = {"000001.jpg": 1, "000002.jpg": -1, "000003.jpg": -1, "000004.jpg": 1, "000005.jpg": 1, "000006.jpg": -1}


def write_celeba(folder: Path, attributes: bool = True) -> Path:
    """Tiny CelebA in the real layout: 178x218 jpgs, partition list, attribute table (40 columns)."""
    from PIL import Image

    images = folder / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i, name in enumerate(CELEBA_PARTS):
        pixels = np.zeros((218, 178, 3), dtype=np.uint8)
        pixels[..., 2] = 255  # blue outside the 140x140 center crop (rows 39-178, columns 19-158)
        pixels[39:179, 19:159] = (40 * i, 100, 30) + rng.integers(0, 20, size=(140, 140, 3))
        Image.fromarray(pixels).save(images / name, quality=95, subsampling=0)  # 4:4:4 chroma: no bleed
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in CELEBA_PARTS.items()))
    if attributes:
        names = [f"Attr{j}" for j in range(20)] + ["Male"] + [f"Attr{j}" for j in range(21, 40)]
        rows = [f"{n} " + " ".join(["-1"] * 20 + [str(MALE[n])] + ["1"] * 19) for n in CELEBA_PARTS]
        (folder / "list_attr_celeba.txt").write_text(f"{len(rows)}\n{' '.join(names)}\n" + "\n".join(rows) + "\n")
    return images


def test_celeba_official_partition_crop_and_labels(tmp_path):
    write_celeba(tmp_path / "celeba")
    data = load_dataset(DataConfig(name="celeba", data_dir=str(tmp_path), val_size=10000))  # val_size unused
    assert data.source == str(tmp_path / "celeba")
    assert (len(data.train), len(data.val), len(data.test)) == (4, 1, 1)
    assert data.train.images.shape == (4, 3, 64, 64) and data.train.images.dtype == torch.uint8
    assert (
        data.train.labels.tolist() == [1, 0, 0, 1]
        and data.val.labels.tolist() == [1]
        and data.test.labels.tolist() == [0]
    )
    # The 140 crop keeps only the face area: no trace of the blue frame; red grows with the index.
    faces = data.train.images.float()
    assert faces[:, 2].max() < 80, "the blue frame outside the 140x140 crop leaked in"
    red = faces[:, 0].mean(dim=(1, 2))
    assert torch.all(red[1:] - red[:-1] > 30)
    assert abs(data.test.images[0, 0].float().mean() - 209.5) < 5  # image 5: 40 * 5 + ~9.5


def test_celeba_matches_torchvision_transform(tmp_path):
    from PIL import Image
    from torchvision import transforms

    images = write_celeba(tmp_path, attributes=False)
    reference = transforms.Compose([transforms.CenterCrop(140), transforms.Resize(64), transforms.PILToTensor()])
    for name in ("000001.jpg", "000006.jpg"):
        with Image.open(images / name) as img:
            expected = reference(img.convert("RGB"))
        np.testing.assert_array_equal(load_face(images / name), expected.numpy())


def test_celeba_without_attributes_has_zero_labels(tmp_path):
    write_celeba(tmp_path, attributes=False)
    data = load_dataset(DataConfig(name="celeba", data_dir=str(tmp_path), train_limit=2))
    assert len(data.train) == 2 and data.train.labels.tolist() == [0, 0]


def test_celeba_bad_files_are_named(tmp_path):
    images = write_celeba(tmp_path)
    broken = images / "000003.jpg"
    broken.write_bytes(broken.read_bytes()[:200])
    with pytest.raises(DataError, match=rf"cannot read image file {broken}"):
        load_dataset(DataConfig(name="celeba", data_dir=str(tmp_path)))
    partition = tmp_path / "list_eval_partition.txt"
    partition.write_text("000001.jpg 0\n000002.jpg 7\n")
    with pytest.raises(DataError, match=rf"{partition} line 2: expected '<image>.jpg 0\|1\|2'"):
        load_dataset(DataConfig(name="celeba", data_dir=str(tmp_path)))


# --- real files ---------------------------------------------------------------------------


def check_real_splits(data, mean: float) -> None:
    assert (len(data.train), len(data.val), len(data.test)) == (50000, 10000, 10000)
    for split in (data.train, data.val, data.test):
        assert split.images.shape[1:] == (1, 32, 32) and split.images.dtype == torch.uint8
        assert split.labels.dtype == torch.int64 and set(split.labels.unique().tolist()) == set(range(10))
        assert split.images.max() >= 250  # bilinear keeps the saturated strokes' interior
    # Mean pixel of the 28x28 images (MNIST 0.1307, FashionMNIST 0.2860): the default bilinear resize
    # keeps it (zero padding would dilute it by 784 / 1024).
    assert abs(data.test.get(torch.arange(10000)).mean().item() - mean) < 0.005


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST not found at {SHARED_MNIST}")
def test_real_mnist():
    data = load_dataset(DataConfig(name="mnist", data_dir=str(SHARED_MNIST), download=False))
    assert data.source == str(SHARED_MNIST)
    check_real_splits(data, mean=0.1307)
    # Validation = the last 10,000 images of the official training file, resized.
    last = read_idx(next(SHARED_MNIST.glob("train-images-idx3-ubyte*")), ndim=3)[-1:]
    np.testing.assert_array_equal(data.val.images[-1:, 0].numpy(), bilinear(last))
    # Zero padding (data.resize=pad) keeps the 28x28 digit at [2:30, 2:30] in a zero frame.
    padded = load_dataset(DataConfig(name="mnist", data_dir=str(SHARED_MNIST), download=False, resize="pad"))
    np.testing.assert_array_equal(padded.val.images[-1, 0, 2:30, 2:30].numpy(), last[0])
    assert padded.test.images[:, :, :2].max() == 0 and padded.test.images[:, :, :, 30:].max() == 0
    # The resized digit is bigger: ~(32/28)^2 more ink, so a larger L2 norm than the padded one (method.md).
    ratio = data.test.float().flatten(1).norm(dim=1).mean() / padded.test.float().flatten(1).norm(dim=1).mean()
    assert 1.06 < ratio.item() < 1.16, ratio
    assert data.train.labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the well-known first MNIST labels


@pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(), reason=f"Debian dataset-fashion-mnist not installed at {DEBIAN_FASHION}"
)
def test_real_fashion_mnist_from_system_copy():
    data = load_dataset(DataConfig(name="fashion-mnist", download=False))  # found without data_dir
    assert data.source == str(DEBIAN_FASHION)
    check_real_splits(data, mean=0.2860)
    assert data.train.labels[:5].tolist() == [9, 0, 0, 3, 0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST not found at {SHARED_MNIST}")
def test_real_mnist_on_cuda():
    data = load_dataset(DataConfig(name="mnist", data_dir=str(SHARED_MNIST)), device="cuda")
    assert data.train.images.is_cuda and data.test.labels.is_cuda
    x = data.train.get(torch.arange(100))
    assert x.is_cuda and x.dtype == torch.float32 and x.min() >= 0.0 and x.max() <= 1.0
    assert data.to("cpu").train.images.device.type == "cpu"
