"""What a sweep prints (radae/sweep/console.py): short per-trial lines and a compact closing table."""

from types import SimpleNamespace

from radae.config import RunConfig
from radae.objective import FID_WEIGHT
from radae.sweep import console
from radae.sweep.runner import _console_callback
from radae.sweep.trial import SweepContext

SPACE = {
    "loss.alpha": {"type": "grid", "values": [0.95]},
    "prior.num_modes": {"type": "grid", "values": [1, 25]},
}
# A final report of a single trial: the objective among ~190 evaluation metrics.
FINAL = {
    **{f"clean_msssim_l{i}_mean": 0.5 for i in range(190)},
    "score": 0.37123,
    "robustness": 0.74121,
    "fid": 45.031,
    "epochs_trained": 2.0,
    "evaluated": 1.0,
    "training_iteration": 3,
}


def test_lines_show_score_r_fid_and_params_only():
    done = console.done_line("t1", {"loss.alpha": 0.95, "prior.num_modes": 25, "seed": 1}, FINAL, 3)
    assert done == (
        "trial t1 done: score 0.3712, R 0.7412, FID 45.03 (alpha=0.95 K=25 seed=1); "
        "2 training epochs + the final evaluation = 3 reports to Tune"
    )
    assert "clean_msssim" not in done
    assert console.epoch_line("t1", {"epoch": 2, "val_loss": 0.04123}) == "trial t1 epoch 2: val_loss 0.04123"
    assert console.epoch_line("t1", FINAL) is None  # the final report is not an epoch
    assert console.started_line("t1", {"loss.alpha": 0.95}) == "trial t1 started: alpha=0.95"


def test_final_table_is_one_row_per_configuration_with_three_metrics():
    table = console.final_table(
        [
            ("t1", "TERMINATED", {"loss.alpha": 0.95, "prior.num_modes": 25, "seed": 0}, FINAL),
            ("t2", "ERROR", {"loss.alpha": 0.95, "prior.num_modes": 1, "seed": 0}, {}),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["trial", "status", "configuration", "score", "R", "FID"]
    assert lines[2].split() == ["t1", "TERMINATED", "alpha=0.95", "K=25", "seed=0", "0.3712", "0.7412", "45.03"]
    assert lines[3].split()[-3:] == ["-", "-", "-"] and len(lines) == 4


def test_the_tune_callback_prints_the_short_lines(capsys):
    ctx = SweepContext(
        sweep_id="s",
        base=RunConfig(),
        space=SPACE,
        objective="scalar",
        fid_weight=FID_WEIGHT,
        storage={},
        tracking_uri="x",
        experiment="x",
        parent_run_id="p",
        work_dir="/tmp",
    )
    cb = _console_callback(ctx)
    config = {"loss.alpha": 0.95, "prior.num_modes": 25, "seed": 1}
    trial = SimpleNamespace(trial_id="t7", config=config, last_result=FINAL, status="TERMINATED", error_file=None)
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(0, [trial], trial, {"epoch": 1, "val_loss": 0.5, "training_iteration": 1})
    cb.on_trial_complete(0, [trial], trial)
    cb.on_experiment_end([trial])
    out = capsys.readouterr().out
    assert "trial t7 started: alpha=0.95 K=25 seed=1" in out and "trial t7 epoch 1: val_loss 0.5" in out
    assert "trial t7 done: score 0.3712, R 0.7412, FID 45.03" in out and "= 3 reports to Tune" in out
    assert "clean_msssim" not in out and len(out.splitlines()) < 10
