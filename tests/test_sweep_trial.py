"""One trial path: single trials, pack members and sweeps/baselines.py share train_and_evaluate and its final metrics."""

from __future__ import annotations

import errno
import runpy
from pathlib import Path

import pytest

from radae.config import RunConfig, apply_overrides
from radae.objective import FID_WEIGHT, FINAL_KEY, make_objective
from radae.runfolder import TrainResult
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
    # Per epoch: a single trial's own names; a pack's m<k>. names and each validation loss of its best
    # member (what ASHA sees), taken per metric: member 1 has the best val_loss, member 0 the best val_rec_mse.
    epoch = {
        0: {"epoch": 1, "val_loss": 2.0, "val_rec_mse": 0.01, "lr": 1e-3},
        1: {"epoch": 1, "val_loss": 1.5, "val_rec_mse": 0.02, "lr": 1e-3},
    }
    assert TrialShape().epoch_report(1, {0: epoch[0]}) == epoch[0]
    report = PackedShape().epoch_report(1, epoch)
    assert report["val_loss"] == 1.5 and report["m1.val_loss"] == 1.5 and report["pack_live"] == 2.0
    assert report["val_rec_mse"] == 0.01 and "lr" not in report


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


class MemoryReporter:
    """The worker loop's reports kept in memory (checkpoints copied out), and the checkpoint it restores."""

    rank = 0
    reports: list[tuple[dict, Path | None]] = []
    restore: Path | None = None

    def report(self, metrics, checkpoint_dir):
        import shutil
        import tempfile

        saved = Path(tempfile.mkdtemp(prefix="radae-test-ckpt-")) if checkpoint_dir else None
        if saved is not None:
            shutil.copytree(checkpoint_dir, saved, dirs_exist_ok=True)
        MemoryReporter.reports.append((dict(metrics), saved))

    def get_checkpoint(self):
        import contextlib
        from types import SimpleNamespace

        where = MemoryReporter.restore
        return (
            None
            if where is None
            else SimpleNamespace(path=str(where), as_directory=lambda: contextlib.nullcontext(str(where)))
        )


@pytest.mark.slow
def test_the_worker_loop_reports_packed_members_and_resumes_them(mnist, tmp_path):
    """run_job without Ray (an in-memory reporter, MLflow on SQLite): a pack of two reports m<k>. metrics per epoch
    with both checkpoints, then every member's final metrics; restored from its epoch-1 checkpoint it resumes there."""
    import time

    from radae.store.tracking import Tracker
    from radae.sweep.trainable import worker_loop
    from radae.sweep.trial import REPORTERS, SweepContext, TrialJob

    if "memory" not in REPORTERS:
        REPORTERS.register("memory")(MemoryReporter)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = apply_overrides(RunConfig(), {**TINY, "train.epochs": 2})
    ctx = SweepContext(
        sweep_id="s",
        base=base,
        space={},
        objective="scalar",
        fid_weight=FID_WEIGHT,
        storage={},
        tracking_uri=uri,
        experiment="x",
        parent_run_id="p",
        work_dir=str(tmp_path),
        executor="direct",
    )
    tracker = Tracker(uri, "x", artifact_location=str(tmp_path / "artifacts"))  # not ./mlruns
    parent = tracker.parent_run("s", {})
    members = []
    for k, alpha in enumerate((0.5, 0.9)):
        cfg = apply_overrides(base, {"loss.alpha": alpha, "train.out_dir": str(tmp_path / f"t1-m{k}")})
        members.append(
            Member(
                f"t1-m{k}", cfg, {"loss.alpha": alpha}, {}, tracker.trial_run(parent, "s", f"t1-m{k}", cfg.flat(), {})
            )
        )
    job = TrialJob(ctx, "t1", "packed", tuple(members), time.time(), reporter="memory")
    MemoryReporter.reports, MemoryReporter.restore = [], None
    final = worker_loop({"job": job})
    epochs = [(r, c) for r, c in MemoryReporter.reports if "epoch" in r]
    assert [r["epoch"] for r, _ in epochs] == [1, 2] and MemoryReporter.reports[-1][0] == final
    for report, ckpt in epochs:
        assert report["val_loss"] == min(report["m0.val_loss"], report["m1.val_loss"]) and report["pack_live"] == 2.0
        assert (ckpt / "m0" / "checkpoint.pt").exists() and (ckpt / "m1" / "checkpoint.pt").exists()
    shape = PackedShape()
    for k in (0, 1):
        own = shape.member_report(final, k)
        assert set(FINAL_METRICS) <= set(own) and own["epochs_trained"] == 2.0 and own["resumed_from_epoch"] == 0.0
        assert final[f"pack.m{k}.score"] == own["score"]
        assert [m.step for m in tracker.client.get_metric_history(members[k].run_id, "val_loss")] == [1, 2]
    assert (MemoryReporter.reports[-1][1] / "m1" / "eval").is_dir()

    # A retry restored from the epoch-1 checkpoint: both members resume there (their newer local files are dropped).
    MemoryReporter.reports, MemoryReporter.restore = [], epochs[0][1]
    again = worker_loop({"job": job})
    assert [r["epoch"] for r, _ in MemoryReporter.reports if "epoch" in r] == [2]
    assert again["m0.resumed_from_epoch"] == 1.0 and again["m1.epochs_trained"] == 2.0
