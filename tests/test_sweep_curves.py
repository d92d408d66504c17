"""Robustness and clean reconstruction against epochs per configuration (radae/analysis/curves.py)."""

import json

import pandas as pd
import pytest

from radae.analysis.curves import curves_figure, load_curves, mean_curves, section_html


def rows_with_runs(tmp_path, with_probe=True):
    rows = []
    for k, (label, seed) in enumerate([("K=1", 0), ("K=1", 1), ("K=10", 0)]):
        out = tmp_path / f"t{k}"
        out.mkdir()
        lines = []
        for epoch in (1, 2, 3):
            line = {"epoch": epoch, "val_loss": 1.0 / epoch}
            if with_probe:
                line |= {
                    "probe_robustness_paper": 0.3 + 0.01 * epoch + 0.1 * seed,
                    "probe_clean_msssim_paper_x_recx": 0.8,
                }
            lines.append(json.dumps(line))
        (out / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        rows.append(
            {"trial_id": f"t{k}", "status": "completed", "config_key": label, "config_label": label, "seed": seed}
            | {"config.train.out_dir": str(out)}
        )
    rows.append({"trial_id": "gone", "status": "completed", "config_key": "K=25", "config_label": "K=25"})
    return pd.DataFrame(rows)


def test_curves_per_configuration_are_the_mean_over_seeds(tmp_path):
    df = rows_with_runs(tmp_path)
    curves = load_curves(df)
    assert set(curves["trial_id"]) == {"t0", "t1", "t2"} and len(curves) == 3 * 3 * 2
    means = mean_curves(curves).set_index(["config_label", "metric", "epoch"])
    assert means.loc[("K=1", "probe_robustness_paper", 2), "mean"] == pytest.approx(0.32 + 0.05)
    assert means.loc[("K=1", "probe_robustness_paper", 2), "seeds"] == 2
    fig = curves_figure(curves)
    assert {t.name for t in fig.data} == {"K=1", "K=10"} and len(fig.data) == 4
    page = section_html(df)
    assert "training-curves-plot" in page and "3 trials" in page


def test_without_probe_curves_the_section_says_why(tmp_path):
    assert "No probe curves" in section_html(rows_with_runs(tmp_path, with_probe=False))
    assert "No probe curves" in section_html(pd.DataFrame({"trial_id": ["x"], "status": ["completed"]}))
