"""The trainer on real MNIST: learning, exact resume, divergence handling, run folders, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from radae.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from radae.config import ConfigError, DataConfig, RunConfig, apply_overrides
from radae.models import LossOutput, create_model
from radae.models.rae import RobustGMMAE
from radae.train import RunFolderError, TrainingDiverged, main, train
from radae.trainer import evaluate_objective, reconstruction_mse

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
pytestmark = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"real MNIST not found at {MNIST_DIR}")


@pytest.fixture(scope="module")
def mnist():
    """2,000 real MNIST training images, 500 validation and the first 500 test images; loaded once."""
    from radae.data import Split, Splits, load_dataset

    full = load_dataset(DataConfig(name="mnist", data_dir=str(MNIST_DIR), train_limit=2000, val_size=500), "cpu")
    test = Split(full.test.images[:500], full.test.labels[:500])
    return Splits(full.train, full.val, test, full.info, full.source)


@pytest.fixture(scope="module")
def trained(mnist, tmp_path_factory):
    """One finished quick run (K = 3, alpha 0.9) shared by the tests that only read its folder."""
    out = tmp_path_factory.mktemp("trained") / "run"
    cfg = quick_config(out, **{"prior.num_modes": 3, "loss.alpha": 0.9})
    return cfg, train(cfg, data=mnist, progress=False)


def quick_config(out_dir: Path, **overrides: object) -> RunConfig:
    base = {
        "data.name": "mnist",
        "data.data_dir": str(MNIST_DIR),
        "data.train_limit": 2000,
        "data.val_size": 500,
        "train.max_steps_per_epoch": 10,
        "train.epochs": 1,
        "train.device": "cpu",
        "train.out_dir": str(out_dir),
        "loss.weight_batches": 10,
    }
    return apply_overrides(RunConfig(), {**base, **overrides})


def test_one_short_epoch_lowers_the_loss_and_writes_every_output(mnist, tmp_path: Path) -> None:
    cfg = quick_config(tmp_path / "run", **{"train.max_steps_per_epoch": 20})
    torch.manual_seed(cfg.train.seed)
    untrained = evaluate_objective(create_model(cfg, mnist.info.image_shape), mnist.val, 100, seed=0)
    seen: list[tuple[dict, str]] = []
    result = train(cfg, data=mnist, on_epoch=lambda m, p: seen.append((m, p)), progress=False)
    after = result.history[-1]
    assert after["val_loss"] < 0.7 * untrained["loss"]
    assert after["val_rec_mse"] < untrained["rec_mse"]
    out = tmp_path / "run"
    for name in ("checkpoint.pt", "metrics.jsonl", "summary.json", "config.json", "samples.png", "reconstructions.png"):
        assert (out / name).is_file(), name
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines == result.history and len(lines) == 1
    assert seen == [(after, str(out / "checkpoint.pt"))]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["best_val"] == after["val_loss"]
    assert RunConfig.from_dict(json.loads((out / "config.json").read_text())) == cfg


class Interrupted(Exception):
    pass


def test_resume_after_interruption_matches_an_uninterrupted_run(mnist, tmp_path: Path) -> None:
    full = train(quick_config(tmp_path / "full", **{"train.epochs": 2}), data=mnist, progress=False)

    cfg = quick_config(tmp_path / "cut", **{"train.epochs": 2})

    def stop_after_first(metrics: dict, _path: str) -> None:
        if metrics["epoch"] == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(cfg, data=mnist, on_epoch=stop_after_first, progress=False)
    resumed = train(cfg, data=mnist, resume=True, progress=False)

    a = load_checkpoint(full.checkpoint)["model"]
    b = load_checkpoint(resumed.checkpoint)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    timing = ("epoch_seconds", "steps_per_second", "probe_seconds", "probe_cpu_seconds")
    strip = [{k: v for k, v in m.items() if k not in timing} for m in (full.history, resumed.history) for m in m]
    assert strip[:2] == strip[2:]
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 2


def test_resume_on_cpu_of_a_graph_run_checkpoint_turns_capturable_off(mnist, tmp_path: Path) -> None:
    cfg = quick_config(tmp_path / "run")
    first = train(cfg, data=mnist, progress=False)
    state = load_checkpoint(first.checkpoint)
    for group in state["optimizer"]["param_groups"]:  # what a CUDA-graph run stores
        group["capturable"] = True
    save_checkpoint(first.checkpoint, state)
    resumed = train(apply_overrides(cfg, {"train.epochs": 2}), data=mnist, resume=True, progress=False)
    groups = load_checkpoint(resumed.checkpoint)["optimizer"]["param_groups"]
    assert [g["capturable"] for g in groups] == [False] * len(groups)


def test_resume_on_cpu_of_a_cuda_run_checkpoint_reseeds_its_generators(mnist, tmp_path: Path) -> None:
    """train.device may change on resume; a CUDA generator's state (Philox seed + offset, 16 bytes)
    cannot be loaded into a CPU generator, so the resumed run must reseed, deterministically."""
    cfg = quick_config(tmp_path / "run")
    first = train(cfg, data=mnist, progress=False)
    state = load_checkpoint(first.checkpoint)
    philox = torch.tensor([7, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0], dtype=torch.uint8)
    state["rng"] |= {"perm": philox.clone(), "noise": philox.clone(), "cuda": philox.clone()}  # what a CUDA run stores
    save_checkpoint(first.checkpoint, state)
    saved = first.checkpoint.read_bytes()
    models = []
    for _ in range(2):  # twice from the same checkpoint: the reseeded continuation is deterministic
        first.checkpoint.write_bytes(saved)
        resumed = train(apply_overrides(cfg, {"train.epochs": 2}), data=mnist, resume=True, progress=False)
        assert [m["epoch"] for m in resumed.history] == [1, 2]
        models.append(load_checkpoint(resumed.checkpoint)["model"])
    for key in models[0]:
        assert torch.equal(models[0][key], models[1][key]), key


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(mnist, tmp_path: Path, monkeypatch) -> None:
    cfg = quick_config(tmp_path / "run", **{"train.epochs": 2})
    ckpt = tmp_path / "run" / "checkpoint.pt"
    saved: dict[str, bytes] = {}
    original = RobustGMMAE.loss

    def nan_rec(self, x, generator=None):
        out = original(self, x, generator)
        parts = {**out.parts, "rec": out.parts["rec"] * float("nan")}
        return LossOutput(out.total * float("nan"), parts)

    def poison_after_first(_metrics: dict, _path: str) -> None:
        saved["bytes"] = ckpt.read_bytes()
        monkeypatch.setattr(RobustGMMAE, "loss", nan_rec)

    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 1: loss, rec not finite"):
        train(cfg, data=mnist, on_epoch=poison_after_first, progress=False)
    assert ckpt.read_bytes() == saved["bytes"]
    assert load_checkpoint(ckpt)["epoch"] == 1
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1


def test_cli_exits_non_zero_on_divergence(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(
        RobustGMMAE, "loss", lambda self, x, generator=None: LossOutput(self.encode(x).sum() * float("inf"), {})
    )
    args = ["--dataset", "mnist", "--data-dir", str(MNIST_DIR), "--data.train_limit", "200", "--data.val_size", "100"]
    code = main([*args, "--out-dir", str(tmp_path / "run"), "--device", "cpu", "--loss.weight_batches", "1"])
    assert code == 3
    assert "not finite" in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_output_folder_of_another_run_is_refused_before_training(mnist, trained, tmp_path: Path) -> None:
    cfg, result = trained
    out = result.out_dir
    before = (out / "checkpoint.pt").read_bytes()
    calls: list[int] = []
    with pytest.raises(RunFolderError, match=rf"{out} holds another run's checkpoint.*train.lr"):
        train(
            apply_overrides(cfg, {"train.lr": 0.01}), data=mnist, on_epoch=lambda m, p: calls.append(1), progress=False
        )
    with pytest.raises(RunFolderError, match="pass --resume"):
        train(cfg, data=mnist, progress=False)
    with pytest.raises(RunFolderError, match="nothing to resume"):
        train(quick_config(tmp_path / "empty"), data=mnist, resume=True, progress=False)
    assert calls == [] and (out / "checkpoint.pt").read_bytes() == before


def test_bad_names_fail_before_any_output(tmp_path: Path) -> None:
    for key, value, known in [
        ("model.name", "nope", "rae"),
        ("adv.method", "cw", "fgsm"),
        ("model.arch", "vit", "mlp"),
    ]:
        with pytest.raises(ConfigError, match=rf"{key} '{value}' is unknown; known: .*{known}"):
            train(quick_config(tmp_path / "run", **{key: value}), progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_graph_step_without_cuda_fails_before_any_output(tmp_path: Path) -> None:
    cfg = quick_config(tmp_path / "run", **{"train.step_mode": "graph", "data.data_dir": str(tmp_path / "no-data")})
    with pytest.raises(ConfigError, match="train.step_mode graph needs a CUDA device"):
        train(cfg, progress=False)  # the missing data would raise DataError if it were read first
    assert not (tmp_path / "run").exists()


def test_a_setting_only_the_model_refuses_fails_before_any_output(tmp_path: Path) -> None:
    cfg = quick_config(tmp_path / "run", **{"model.name": "lipschitz-vae", "model.arch": "conv"})
    with pytest.raises(ConfigError, match="model.arch must be mlp for lipschitz-vae"):
        train(cfg, progress=False)
    assert not (tmp_path / "run").exists()


def test_checkpoint_round_trip_through_load_model(mnist, trained) -> None:
    cfg, result = trained
    loaded_cfg, model = load_model(result.checkpoint)
    assert loaded_cfg == cfg and not model.training
    state = load_checkpoint(result.checkpoint)["model"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    # The reloaded model reproduces the trained model's final test reconstruction error.
    assert reconstruction_mse(model, mnist.test, 100) == pytest.approx(result.summary["test_rec_mse"], rel=1e-6)


def test_checkpoint_written_before_data_resize_keeps_zero_padding(mnist, trained, tmp_path: Path) -> None:
    cfg, result = trained
    assert cfg.data.resize == "bilinear"  # the default now
    state = load_checkpoint(result.checkpoint)
    assert state["config"]["data"]["resize"] == "bilinear"  # recorded in every checkpoint
    del state["config"]["data"]["resize"]  # what a checkpoint from before the field looks like
    old = tmp_path / "old" / "checkpoint.pt"
    save_checkpoint(old, state)
    loaded, _ = load_model(old)
    assert loaded.data.resize == "pad" and loaded == apply_overrides(cfg, {"data.resize": "pad"})
    # A new default-config run into that folder is told why it is another run's folder.
    fresh = apply_overrides(cfg, {"train.out_dir": str(old.parent)})
    with pytest.raises(RunFolderError, match=r"data.resize='pad' \(now 'bilinear'\)"):
        train(fresh, data=mnist, progress=False)
    # config.json beside the checkpoint records the field too.
    assert json.loads((result.checkpoint.parent / "config.json").read_text())["data"]["resize"] == "bilinear"


def test_damaged_or_foreign_checkpoints_raise_checkpoint_error(mnist, trained, tmp_path: Path) -> None:
    cfg, result = trained
    data = result.checkpoint.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"{truncated} is truncated or corrupt"):
        load_model(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match=rf"{foreign} is not a radae checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    # A truncated checkpoint in the output folder stops a new run there with the file named.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(data[:100])
    with pytest.raises(RunFolderError, match=rf"{tmp_path / 'run'} holds an unusable checkpoint.*truncated or corrupt"):
        train(apply_overrides(cfg, {"train.out_dir": str(tmp_path / "run")}), data=mnist, progress=False)


def test_failed_save_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"config": {}, "image_shape": (1, 2, 2), "model": {}, "epoch": 1})
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017  (pickling a lambda fails inside torch.save)
        save_checkpoint(path, {"config": {}, "model": lambda: None})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_named_data_dir_without_the_data_stops_before_any_output(tmp_path: Path, capsys, state) -> None:
    data = tmp_path / "data"
    if state == "empty":
        data.mkdir()
    code = main(["--dataset", "mnist", "--data-dir", str(data), "--out-dir", str(tmp_path / "run"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"--data-dir (data.data_dir) {data}: " in err  # the named folder, never another copy
    assert "no such folder" in err if state == "missing" else "the folder is empty" in err
    assert not (tmp_path / "run").exists()


def test_summary_records_the_folder_read(mnist, trained) -> None:
    _, result = trained
    summary = json.loads((result.out_dir / "summary.json").read_text())
    assert summary["data_source"] == mnist.source
    assert Path(summary["data_source"]).is_dir()


def test_cli_errors_are_one_line_and_a_pointer_to_help(capsys) -> None:
    for argv, message in ((["--loss.alpha", "7"], "loss.alpha must be in [0, 1], got 7.0"), (["--bogus"], "--bogus")):
        with pytest.raises(SystemExit) as done:
            main(argv)
        err = capsys.readouterr().err.splitlines()
        assert done.value.code == 2 and len(err) == 2, err  # not ~70 lines of usage
        assert message in err[0] and err[1] == "Run 'python -m radae.train --help' for the options."


def test_a_run_folder_stands_for_its_checkpoint(trained) -> None:
    _, result = trained
    assert load_checkpoint(result.out_dir)["epoch"] == load_checkpoint(result.checkpoint)["epoch"]
    assert load_model(result.out_dir)[0] == load_model(result.checkpoint)[0]
