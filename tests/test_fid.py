"""Frechet distance closed forms, the cached classifier feature space, torch-fidelity integration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radae.config import DataConfig
from radae.fid import (
    FIDError,
    ImageTensorDataset,
    _fid_direct,
    _fid_torch_fidelity,
    check_inception_weights,
    classifier_feature_space,
    compute_fid,
    frechet_distance,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_identical_gaussians_have_zero_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 8))
    mu, sigma = a.mean(0), np.cov(a, rowvar=False)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9


def test_equal_covariances_give_squared_mean_distance():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 6))
    sigma = np.cov(a, rowvar=False)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(((mu1 - mu2) ** 2).sum(), rel=1e-7, abs=1e-9)


def test_diagonal_covariances_closed_form():
    # Commuting covariances: tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (s1 - s2)^2 for standard deviations s.
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([2.0, 1.0, 0.5])
    d = frechet_distance(np.zeros(3), np.diag(s1**2), np.ones(3), np.diag(s2**2))
    assert d == pytest.approx(3.0 + ((s1 - s2) ** 2).sum())


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_dataset_serves_uint8_three_channel_images():
    ds = ImageTensorDataset(torch.rand(4, 1, 32, 32))
    assert len(ds) == 4 and ds[0].dtype == torch.uint8 and ds[0].shape == (3, 32, 32)


@pytest.fixture(scope="module")
def mnist_space(tmp_path_factory, one_thread):
    from radae.data import DataError, load_dataset

    try:
        data = load_dataset(DataConfig(name="mnist", data_dir="/work/shared/data/mnist", download=False))
    except DataError as err:
        pytest.skip(f"real MNIST not available: {err}")
    cache = tmp_path_factory.mktemp("features")
    train = data.train
    space = classifier_feature_space(
        "mnist", train.images[:6000], train.labels[:6000], 10, cache_dir=cache, epochs=1, log=lambda s: None
    )
    return data, space, cache


@pytest.mark.slow
def test_classifier_fid_separates_real_from_noisy_and_agrees_with_direct(mnist_space):
    data, space, _ = mnist_space
    assert space.metric == "fid_classifier"
    real, other = data.val.images[:2000], data.test.images[:2000]
    noisy = (other.float() / 255 + 0.3 * torch.rand(other.shape, generator=torch.Generator().manual_seed(0))).clamp(
        0, 1
    )
    cpu = torch.device("cpu")
    same = _fid_torch_fidelity(space, other, real, cpu)
    worse = _fid_torch_fidelity(space, noisy, real, cpu)
    assert 0 <= same < worse / 5, (same, worse)
    assert _fid_direct(space, noisy, real, cpu) == pytest.approx(worse, rel=1e-3)


def test_feature_net_cache_is_reused_and_rebuilt_when_corrupt(mnist_space):
    data, space, cache = mnist_space
    again = classifier_feature_space(
        "mnist",
        data.train.images[:6000],
        data.train.labels[:6000],
        10,
        cache_dir=cache,
        epochs=1,
        log=lambda s: pytest.fail("a valid cache must not retrain"),
    )
    assert again == space
    path = cache / space.weights_path.split("/")[-1]
    path.write_bytes(path.read_bytes()[:-10])  # truncate: the checksum no longer matches
    messages = []
    with pytest.warns(UserWarning, match="fails its checksum"):
        rebuilt = classifier_feature_space(
            "mnist",
            data.train.images[:6000],
            data.train.labels[:6000],
            10,
            cache_dir=cache,
            epochs=1,
            log=messages.append,
        )
    assert rebuilt.weights_path == space.weights_path and messages


def test_compute_fid_runs_give_mean_and_std(mnist_space):
    data, space, _ = mnist_space

    class Replay:
        """Generates real test digits (a perfect generator of MNIST-like images)."""

        def sample(self, n, generator):
            idx = torch.randint(len(data.test), (n,), generator=generator)
            return data.test.get(idx)

    out = compute_fid(Replay(), data.val.images[:1000], space, samples=500, runs=2, device=torch.device("cpu"))
    assert len(out["runs"]) == 2 and out["std"] >= 0
    assert out["mean"] == pytest.approx(np.mean(out["runs"]))


def test_inception_weights_that_do_not_load_raise_before_work(tmp_path):
    with pytest.raises(FIDError, match="do not exist"):
        check_inception_weights(tmp_path / "missing.pth")
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(FIDError, match="do not load"):
        check_inception_weights(bad)
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(FIDError, match="do not load"):
        check_inception_weights(wrong)


def test_general_covariances_agree_with_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(50, 5)), rng.normal(size=(50, 5)) @ rng.normal(size=(5, 5))
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy_linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8)
    singular = np.diag([1.0, 0.0, 2.0, 0.0, 1.0])  # dead features: still finite and exact
    assert frechet_distance(mu1, singular, mu1, singular) == pytest.approx(0.0, abs=1e-9)


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """A real-format Inception-v3 weights file with random values (no trained weights exist offline).

    torch-fidelity's constructor always loads weights; loading is skipped once, only to obtain a
    randomly initialised state dict to save. The code under test then loads that file normally.
    """
    from unittest import mock

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    with (
        mock.patch("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", return_value={}),
        mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", return_value=None),
    ):
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow
def test_inception_weights_file_gives_fid_inception(random_inception_weights):
    space = check_inception_weights(random_inception_weights)
    assert space.metric == "fid_inception" and space.layer == "2048"

    class Noise:
        def sample(self, n, generator):
            return torch.rand(n, 1, 32, 32, generator=generator)

    real = (torch.rand(12, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    out = compute_fid(Noise(), real, space, samples=12, runs=1, device=torch.device("cpu"))
    assert np.isfinite(out["mean"]) and out["std"] == 0


def _saved_feature_net(path, seed=0):
    """A FeatureCNN file in the cache's format (state dict, image shape, class count), untrained."""
    from radae.classifier import FeatureCNN

    torch.manual_seed(seed)
    net = FeatureCNN((1, 32, 32), 10)
    torch.save({"model": net.state_dict(), "image_shape": [1, 32, 32], "num_classes": 10}, path)
    return path


def test_checked_feature_space_verifies_the_checksum_before_use(tmp_path):
    from radae.fid import checked_feature_space, file_sha256, load_feature_net

    path = _saved_feature_net(tmp_path / "net.pt")
    sha = file_sha256(path)
    space = checked_feature_space(path, sha)
    assert space.metric == "fid_classifier" and space.weights_path == str(path)
    assert load_feature_net(space.weights_path).image_shape == (1, 32, 32)
    other = file_sha256(_saved_feature_net(tmp_path / "other.pt", seed=1))
    with pytest.raises(FIDError, match=rf"net.pt has sha256 {sha}, expected {other}: corrupt or another network"):
        checked_feature_space(path, other)
    with pytest.raises(FIDError, match="does not exist"):
        checked_feature_space(tmp_path / "missing.pt", sha)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a network")
    with pytest.raises(FIDError, match="garbage.pt does not load"):  # right checksum, not a network
        checked_feature_space(garbage, file_sha256(garbage))


def test_reference_statistics_are_computed_once_and_checked(mnist_space, tmp_path, monkeypatch):
    from radae import fid

    data, space, _ = mnist_space
    real, cpu = data.val.images[:1000], torch.device("cpu")
    mu, sigma = fid.reference_statistics(space, real, cpu, cache_dir=tmp_path)
    direct = fid.gaussian_statistics(fid.classifier_features(space, real, cpu))
    assert np.allclose(mu, direct[0]) and np.allclose(sigma, direct[1])
    (path,) = (tmp_path / "stats").iterdir()
    calls = []
    monkeypatch.setattr(fid, "classifier_features", lambda *a: calls.append(a) or torch.zeros(3, 128))
    again = fid.reference_statistics(space, real, cpu, cache_dir=tmp_path)
    assert not calls and np.array_equal(again[0], mu)  # read from the file, not recomputed
    # other images (or another network or precision) are another key: computed, not served stale
    fid.reference_statistics(space, real[:500], cpu, cache_dir=tmp_path)
    assert len(calls) == 1
    path.write_bytes(path.read_bytes()[:-20])  # corrupt: recomputed, with a warning
    with pytest.warns(UserWarning, match="do not match their checksums"):
        fid.reference_statistics(space, real, cpu, cache_dir=tmp_path)
    assert len(calls) == 2


def test_compute_fid_with_cached_reference_equals_torch_fidelity(mnist_space, tmp_path):
    data, space, _ = mnist_space
    cpu = torch.device("cpu")

    class Replay:
        def sample(self, n, generator):
            return data.test.get(torch.randint(len(data.test), (n,), generator=generator))

    real = data.val.images[:1000]
    out = compute_fid(Replay(), real, space, samples=500, runs=2, device=cpu, stats_cache=tmp_path)
    for run, value in enumerate(out["runs"]):
        fake = torch.cat([Replay().sample(500, torch.Generator().manual_seed(run))])
        fake = (fake.clamp(0, 1) * 255).round().to(torch.uint8)
        assert value == pytest.approx(_fid_torch_fidelity(space, fake, real, cpu), rel=1e-3)
