"""One trial path: single trials, pack members and sweeps/baselines.py share train_and_evaluate and its final metrics."""

from __future__ import annotations

import errno
import runpy
from pathlib import Path

import pytest

from radae.config import RunConfig, apply_overrides
from radae.runfolder import TrainResult
from radae.sweep.objective import FINAL_KEY, make_objective
from radae.sweep.shapes import PackedShape, TrialShape, shape_of
from radae.sweep.trial import FINAL_METRICS, DiskFullError, Member, Outcome, train_and_evaluate, trial_row

pytestmark = pytest.mark.usefixtures("one_thread")
BASELINES_SCRIPT = Path(__file__).parents[1] / "sweeps" / "baselines.py"
TINY = {
    "data.name": "mnist",
    "data.train_limit": 300,
    "data.val_size": 100,
    "data.download": False,
    "train.epochs": 1,
    "eval.images": 2,
    "eval.trials": 1,
    "eval.attack_steps": 2,
    "eval.fid_samples": 200,
    "eval.fid_runs": 1,
    "eval.classifier_epochs": 1,
}


def test_the_trial_config_chooses_the_shape_once():
    assert shape_of({"loss.alpha": 0.5})[0] == "single" and isinstance(shape_of({"loss.alpha": 0.5})[1], TrialShape)
    name, shape = shape_of({"pack": [{"loss.alpha": 0.5}, {"loss.alpha": 0.9}]})
    assert name == "packed" and isinstance(shape, PackedShape)
    assert shape.member_params({"pack": [{"a": 1}, {"a": 2}]}) == [{"a": 1}, {"a": 2}]
    assert shape.member_ids("t7", 2) == ["t7-m0", "t7-m1"] and TrialShape().member_ids("t7", 1) == ["t7"]


def test_member_reports_round_trip_and_a_diverged_member_keeps_its_error():
    """What the worker reports to Ray is what the Tune function reads back per member (rows, statuses)."""
    objective = make_objective("scalar", 0.1)
    finals = [{"score": 0.2, "robustness": 0.5, "fid": 3.0, FINAL_KEY: 1.0}, None]
    packed = PackedShape().final_report(finals, {1: "loss nan at epoch 2"}, objective)
    assert packed["m0.score"] == 0.2 and packed["pack.m0.score"] == 0.2 and packed["score"] == 0.2
    assert (
        packed["m1.diverged"] == 1.0 and packed["m1.error"] == "loss nan at epoch 2" and "pack.m1.score" not in packed
    )
    assert PackedShape().member_report(packed, 0) == finals[0]
    assert PackedShape().member_report(packed, 1) == {"diverged": 1.0, "error": "loss nan at epoch 2"}
    single = TrialShape().final_report(finals[:1], {}, objective)
    assert single == finals[0] and TrialShape().member_report(single, 0) == finals[0]
    # Per epoch: a single trial's own names; a pack's m<k>. names and its best val_loss (what ASHA sees).
    epoch = {0: {"epoch": 1, "val_loss": 2.0}, 1: {"epoch": 1, "val_loss": 1.5}}
    assert TrialShape().epoch_report(1, {0: epoch[0]}) == {"epoch": 1, "val_loss": 2.0}
    report = PackedShape().epoch_report(1, epoch)
    assert report["val_loss"] == 1.5 and report["m1.val_loss"] == 1.5 and report["pack_live"] == 2.0


def test_a_diverged_result_is_not_evaluated():
    """train_packed marks a member whose loss became NaN: its outcome is the error, no evaluation runs."""
    cfg = apply_overrides(RunConfig(), {"data.name": "mnist"})
    diverged = TrainResult(
        Path("/nonexistent"), Path("/nonexistent/checkpoint.pt"), {"status": "diverged", "error": "loss is nan"}
    )
    (outcome,) = train_and_evaluate([cfg], None, make_objective("scalar"), train=lambda: [diverged])
    assert outcome == Outcome(None, "loss is nan")


def test_rows_name_their_error_and_split_the_training_times(tmp_path):
    cfg = apply_overrides(RunConfig(), {"data.name": "mnist", "train.out_dir": str(tmp_path)})
    member = Member("t1-m0", cfg, {"loss.alpha": 0.5}, {"pack_trial": "t1", "pack_member": 0, "seed": 0})
    final = {
        "score": 0.1,
        "train_seconds": 2.0,
        "eval_seconds": 1.0,
        "train_started_at": 10.0,
        "train_finished_at": 12.0,
        "resumed_from_epoch": 3.0,
        FINAL_KEY: 1.0,
    }
    row = trial_row(sweep_id="s", member=member, final=final, started=5.0, executor="direct")
    assert row["status"] == "completed" and row["train_started_at"] == 10.0 and "metric.train_started_at" not in row
    assert row["metric.score"] == 0.1 and row["resumed_from_epoch"] == 3 and row["pack_member"] == 0
    assert row["param.loss.alpha"] == 0.5 and row["config.data.name"] == "mnist" and "error" not in row
    failed = trial_row(
        sweep_id="s", member=member, final={"diverged": 1.0}, started=5.0, executor="direct", error="loss is nan"
    )
    assert failed["status"] == "error" and failed["error"] == "loss is nan" and failed["train_seconds"] is None


def test_a_full_disk_names_the_trial_and_its_folder():
    full = DiskFullError.of(OSError(errno.ENOSPC, "No space left on device"), "t_00001", "/work/trials/t_00001")
    assert isinstance(full, DiskFullError) and full.errno == errno.ENOSPC
    assert "trial t_00001: no space left on the device of its work folder /work/trials/t_00001" in str(full)
    other = PermissionError(errno.EACCES, "denied")
    assert DiskFullError.of(other, "t", "/x") is other and DiskFullError.of(full, "t", "/x") is full


@pytest.fixture(scope="module")
def mnist():
    from radae.data import DataError, load_dataset

    try:
        return load_dataset(apply_overrides(RunConfig(), TINY).data)
    except DataError as err:
        pytest.skip(f"real MNIST not available: {err}")


@pytest.mark.slow
def test_single_packed_and_baselines_final_metrics_have_the_same_keys(mnist, tmp_path):
    """Real MNIST, one epoch: a single trial, both members of a pack and a baselines.py model end with the
    same final metric names (FINAL_METRICS, the evaluation's and the objective's)."""
    objective = make_objective("scalar", 0.1)

    def cfg(name: str, **extra) -> RunConfig:
        return apply_overrides(RunConfig(), {**TINY, "train.out_dir": str(tmp_path / name), **extra})

    epochs: list[tuple[int, dict]] = []
    single_cfg = cfg("single")
    (single,) = train_and_evaluate(
        [single_cfg],
        mnist,
        objective,
        train=lambda: TrialShape().train(
            [single_cfg],
            resume=False,
            data=mnist,
            pack_noise="member",
            on_epoch=lambda k, m, p: epochs.append((k, m)),
            after_epoch=lambda e: None,
        ),
    )
    pack = [cfg("m0", **{"loss.alpha": 0.5}), cfg("m1", **{"loss.alpha": 0.9})]
    members = train_and_evaluate(
        pack,
        mnist,
        objective,
        train=lambda: PackedShape().train(
            pack,
            resume=False,
            data=mnist,
            pack_noise="member",
            on_epoch=lambda k, m, p: epochs.append((k, m)),
            after_epoch=lambda e: None,
        ),
    )
    baseline = runpy.run_path(str(BASELINES_SCRIPT))["run_model"](
        cfg("vae", **{"model.name": "vae"}), mnist, objective, progress=False
    )
    assert sorted(k for k, _ in epochs) == [0, 0, 1]  # one epoch: the single trial's, then each member's
    keys = set(single.final)
    assert set(FINAL_METRICS) | {"robustness", "fid", "score", "latent_msssim_xt_recxa_l3_mean"} <= keys
    assert [set(m.final) for m in members] == [keys, keys] and set(baseline) == keys
    assert single.final["epochs_trained"] == 1.0 and single.final[FINAL_KEY] == 1.0
    assert members[0].final["score"] != members[1].final["score"]  # each member evaluated on its own
