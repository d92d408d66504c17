"""Fixtures shared by the test modules."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Small models on a shared 2-core machine: one intra-op thread avoids oversubscription stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def dead_services(monkeypatch):
    """S3 and MLflow addresses on free loopback ports where nothing listens, and no Ray address."""
    from cluster.stack import free_port

    monkeypatch.setenv("RADAE_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("RADAE_S3_BUCKET", "radae")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
