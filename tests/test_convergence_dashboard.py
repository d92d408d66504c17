"""dashboards/convergence.py: per-epoch means over seeds with t-intervals, plateau and peak epochs, clear errors."""

import json
import math
import runpy
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
conv = runpy.run_path(str(ROOT / "dashboards" / "convergence.py"), run_name="convergence")

CLEAN = {3: [0.80, 0.82, 0.81], 6: [0.90, 0.91, 0.92], 9: [0.905, 0.906, 0.907], 12: [0.906, 0.907, 0.908]}
R = {3: [0.40, 0.42, 0.44], 6: [0.50, 0.52, 0.51], 9: [0.45, 0.46, 0.44], 12: [0.41, 0.40, 0.42]}


def write_runs(tmp_path: Path) -> list[Path]:
    folders = []
    for seed in range(3):
        folder = tmp_path / f"k10-s{seed}"
        folder.mkdir()
        lines = []
        for epoch in range(1, 13):
            line = {"epoch": epoch, "val_loss": 1.0}
            if epoch in CLEAN:  # probed every 3 epochs
                line |= {
                    "probe_clean_msssim_paper_x_recx": CLEAN[epoch][seed],
                    "probe_robustness_paper": R[epoch][seed],
                    "probe_max_damage_msssim_paper_recx_recxa_l3": 0.5,
                    "probe_max_damage_msssim_paper_recx_recxa_l5": 0.3,
                    "probe_latent_msssim_paper_xt_recxa_l3": 0.4,
                    "probe_latent_msssim_paper_xt_recxa_l5": 0.7,
                }
            lines.append(json.dumps(line))
        (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        folders.append(folder)
    return folders


def test_means_intervals_plateau_and_peak(tmp_path, capsys):
    write_runs(tmp_path)
    out_md, out_png = tmp_path / "c.md", tmp_path / "c.png"
    assert conv["main"]([f"K 10={tmp_path}/k10-s*", "--md", str(out_md), "--plot", str(out_png)]) == 0
    text = out_md.read_text()
    assert "**K 10** (3 seeds" in text
    half = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)  # clean at epoch 3: mean 0.81, sd 0.01
    assert f"| 3 | 0.810 [{0.81 - half:.3f}, {0.81 + half:.3f}]" in text
    # 0.906 (epoch 12) is not 0.002 above 0.906 (epoch 9): improving stops after epoch 6; R peaks at 6.
    assert "stops improving (by more than 0.002) after epoch 6; probe R is highest at epoch 6" in text
    assert out_png.stat().st_size > 10_000
    assert capsys.readouterr().out.startswith("**K 10**")


def test_selected_epochs_and_the_change_between_two_epochs_paired_by_seed(tmp_path, capsys):
    write_runs(tmp_path)
    assert conv["main"]([f"K 10={tmp_path}/k10-s*", "--epochs", "6", "12", "--compare", "6", "12"]) == 0
    text = capsys.readouterr().out
    epochs = [line.split(" | ")[0] for line in text.splitlines() if line[2:3].isdigit()]
    assert epochs == ["| 6", "| 12"]
    row = next(line for line in text.splitlines() if line.startswith("| K 10 | 3 |"))
    # R per seed: 0.50 -> 0.41, 0.52 -> 0.40, 0.51 -> 0.42; changes -0.09, -0.12, -0.09.
    changes = [-0.09, -0.12, -0.09]
    m, half = sum(changes) / 3, stats.t.ppf(0.975, 2) * stats.tstd(changes) / math.sqrt(3)
    assert f"{m:+.3f} [{m - half:+.3f}, {m + half:+.3f}]" in row
    assert "+0.000" in row  # max damage is constant in these runs: no change, and a zero-width interval
    assert conv["main"]([f"K 10={tmp_path}/k10-s*", "--compare", "6", "60"]) == 2
    assert "did not probe both epochs" in capsys.readouterr().err


def test_intervals_stay_inside_the_metrics_range():
    assert conv["interval_text"](0.02, 0.05) == "0.020 [0.000, 0.070]"
    assert conv["interval_text"](0.98, 0.05) == "0.980 [0.930, 1.000]"
    assert conv["interval_text"](0.5, math.nan) == "0.500"


def test_errors_name_what_is_wrong(tmp_path, capsys):
    assert conv["main"]([str(tmp_path / "none*")]) == 2
    assert "no run folder matches" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val_loss": 1.0}) + "\n")
    assert conv["main"]([str(tmp_path / "run")]) == 2
    assert "probe.every 0" in capsys.readouterr().err
