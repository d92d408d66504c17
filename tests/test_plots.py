"""Training and evaluation outputs are written atomically: a failed write keeps the previous file."""

from __future__ import annotations

import resource
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from radae.checkpoint import write_text_atomic
from radae.plots import save_grid


@contextmanager
def file_size_limit(limit: int):
    """Writes past ``limit`` bytes fail with OSError (EFBIG) inside the block, as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_failed_figure_write_keeps_the_previous_figure(tmp_path: Path) -> None:
    path = tmp_path / "samples.png"
    save_grid(path, torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(0)), nrow=4)
    before = path.read_bytes()
    with pytest.raises(OSError), file_size_limit(200):
        save_grid(path, torch.rand(64, 1, 32, 32, generator=torch.Generator().manual_seed(1)), nrow=8)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["samples.png"]


def test_a_failed_text_write_keeps_the_previous_text(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_text_atomic(path, '{"epochs": 1}\n')
    with pytest.raises(OSError), file_size_limit(200):
        write_text_atomic(path, '{"epochs": 2, "pad": "' + "x" * 10_000 + '"}\n')
    assert path.read_text() == '{"epochs": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    write_text_atomic(path, "done\n")
    assert path.read_text() == "done\n"


def test_a_failed_evaluation_table_write_keeps_the_previous_tables(tmp_path: Path) -> None:
    from radae.eval_plots import write_tables

    row = {"name": "latent_msssim_xt_recxa_l1", "metric": "msssim", "compared": "xt_recxa", "attack": "latent"}
    row |= {"lambda": 1.0, "mean": 0.5, "std": 0.1, "n": 4}
    write_tables(tmp_path, {"latent_msssim_xt_recxa_l1_mean": 0.5}, [row], {"images": 4}, 1.0)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(OSError), file_size_limit(10_000):  # the Parquet file fits, eval.json does not
        write_tables(tmp_path, {"x": 1.0}, [row] * 200, {"images": 4}, 2.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)  # no temporary file left
    assert (tmp_path / "eval.json").read_bytes() == before["eval.json"]
