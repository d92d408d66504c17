"""The robustness probe along training (radae/probe.py) and its per-epoch hook in the trainer, on real MNIST."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from radae.config import ConfigError, DataConfig, RunConfig, apply_overrides
from radae.models import create_model
from radae.probe import RobustnessProbe, make_probe, probe_metrics
from radae.train import train

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
pytestmark = [
    pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"real MNIST not found at {MNIST_DIR}"),
    pytest.mark.usefixtures("one_thread"),
]
PROBE = {"probe.images": 6, "probe.attack_steps": 10}


@pytest.fixture(scope="module")
def mnist():
    from radae.data import load_dataset

    return load_dataset(DataConfig(name="mnist", data_dir=str(MNIST_DIR), train_limit=1000, val_size=200), "cpu")


def config(out: Path, **overrides: object) -> RunConfig:
    base = {"data.name": "mnist", "data.data_dir": str(MNIST_DIR), "data.train_limit": 1000, "data.val_size": 200}
    base |= {"train.max_steps_per_epoch": 5, "train.device": "cpu", "train.out_dir": str(out), **PROBE}
    return apply_overrides(RunConfig(), {**base, **overrides})


def test_probe_values_are_fixed_bounded_and_give_r(mnist, tmp_path):
    cfg = config(tmp_path)
    torch.manual_seed(0)
    model = create_model(cfg, mnist.info.image_shape)
    probe = RobustnessProbe(cfg.probe, mnist)
    first, again = probe(model), probe(model)
    values = {k: v for k, v in first.items() if "seconds" not in k}
    assert values == {k: again[k] for k in values}  # fixed images, targets and starts: same model, same values
    for key, value in values.items():
        assert 0.0 <= value <= 1.0, key
    for level in ("l3", "l5"):
        assert {f"probe_latent_msssim_paper_xt_recxa_{level}", f"probe_max_damage_msssim_recx_recxa_{level}"} <= set(
            first
        )
    r = sum(
        (
            first[f"probe_max_damage_msssim_paper_recx_recxa_{lv}"]
            + 1
            - first[f"probe_latent_msssim_paper_xt_recxa_{lv}"]
        )
        / 2
        for lv in ("l3", "l5")
    )
    assert first["probe_robustness_paper"] == pytest.approx(r / 2)
    assert first["probe_cpu_seconds"] > 0 and "probe_clean_msssim_paper_x_recx" in first
    other = create_model(cfg, mnist.info.image_shape)  # another initialisation: other values
    assert probe(other)["probe_robustness_paper"] != first["probe_robustness_paper"]


def test_probe_schedule_and_settings():
    cfg = RunConfig().probe
    assert (cfg.every, cfg.images, cfg.trials, cfg.levels) == (1, 20, 1, (3.0, 5.0))  # on by default
    every2 = apply_overrides(RunConfig(), {"probe.every": 2}).probe
    assert [e for e in range(1, 7) if RobustnessProbe.due(type("P", (), {"cfg": every2})(), e)] == [2, 4, 6]
    assert make_probe(apply_overrides(RunConfig(), {"probe.every": 0}).probe, None) is None
    assert probe_metrics(None, None, 1) == {}
    for key, value in (("probe.every", -1), ("probe.images", 0), ("probe.levels", "0")):
        with pytest.raises(ConfigError, match=key):
            apply_overrides(RunConfig(), {key: value})


def test_training_logs_the_probe_per_epoch_to_metrics_jsonl(mnist, tmp_path):
    result = train(config(tmp_path / "run", **{"train.epochs": 2}), data=mnist, progress=False)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2] and lines == result.history
    assert all(0 <= line["probe_robustness_paper"] <= 1 and "probe_clean_msssim_paper_x_recx" in line for line in lines)
    sparse = train(config(tmp_path / "sparse", **{"train.epochs": 2, "probe.every": 2}), data=mnist, progress=False)
    assert ["probe_robustness" in m for m in sparse.history] == [False, True]
