"""The robustness-gap factor table (radae/analysis/factors.py, dashboards/robustness_gap.py) and Welch's interval."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sweep_rows import make_rows

from radae.analysis.aggregate import welch_difference
from radae.analysis.factors import factor_table
from radae.analysis.tables import budget, table1, table3

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def factor_rows(sweep_id, config, shift):
    """K 10, alpha 0.95 rows (2 seeds) of a factor sweep: ``config`` changed, robustness moved by ``shift``."""
    df = make_rows(ks=(10,), alphas=(0.95,), extra_statuses=False, sweep_id=sweep_id)
    for key, value in config.items():
        df[f"config.{key}"] = value
    df["metric.robustness"] += shift
    df["config_key"] = f"{sweep_id}-key"
    return df


@pytest.mark.parametrize("seed", range(5))
def test_welch_interval_is_the_dual_of_welchs_test(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, 4), rng.normal(1.2, 2, 3)
    diff, half = welch_difference(a, b)
    assert diff == pytest.approx(b.mean() - a.mean())
    p = stats.ttest_ind(b, a, equal_var=False).pvalue
    assert (abs(diff) > half) == (p < 0.05)
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 3
    nu = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    assert half == pytest.approx(stats.t.ppf(0.975, nu) * np.sqrt(va + vb))


def test_welch_interval_needs_two_values_each_side():
    diff, half = welch_difference([1.0], [2.0, 3.0])
    assert diff == 1.5 and np.isnan(half)
    assert all(np.isnan(welch_difference([], [1.0, 2.0])))


def test_factor_rows_stay_out_of_the_paper_tables_and_enter_their_factor():
    df = pd.concat(
        [
            make_rows(),
            factor_rows("gap-lr", {"train.lr": 0.0002}, -0.1),
            factor_rows("gap-advrec", {"loss.adv_rec": True}, +0.05),
        ],
        ignore_index=True,
    )
    # tables 1 and 3 at K 10, alpha 0.95 keep only the 2 rows at radae's defaults
    assert "radae, MS-SSIM standard (n=2)" in set(table3(df)[table3(df).iloc[:, 0] == "alpha=0.95"]["source"])
    gmm = table1(df)[table1(df).iloc[:, 0] == "robust GMM AE (K=10, alpha 0.95)"]
    assert "radae, MS-SSIM standard (n=2)" in set(gmm["source"])
    table = factor_table(df).set_index("factor (B vs A)")
    lr = table.loc["lr 2e-4 (authors) vs 2e-3"]
    assert lr["n B / A"] == "2 / 2" and lr["R standard"].startswith("-0.100 [")
    assert lr["B's sweeps"] == "gap-lr"
    assert table.loc["loss.adv_rec on vs off"]["R standard"].startswith("+0.050 [")
    # factors without rows on both sides are left out (no roll, PGD or eps sweep here)
    assert "K 25 roll (authors) vs K 1" not in table.index and "PGD (5 steps) vs FGSM" not in table.index
    assert table.loc["K 25 vs K 1 (auto placement: spread 6 apart)"]["R standard"].startswith("+0.240 [")


def test_a_key_set_in_one_sweeps_base_and_searched_in_anothers_selects_both():
    """gap-roll sets prior.num_modes=25 by --set (config column only); the reproduction sweep searched it
    (param column): joined, the param column is null for gap-roll's rows and config must be read."""
    roll = factor_rows("gap-roll", {"prior.num_modes": 25, "prior.placement": "roll"}, 0.0)
    roll = roll.drop(columns=[c for c in roll if c == "param.prior.num_modes"])
    table = factor_table(pd.concat([make_rows(), roll], ignore_index=True)).set_index("factor (B vs A)")
    assert table.loc["K 25 roll (authors) vs K 1"]["n B / A"] == "2 / 2"
    assert table.loc["K 25 roll vs K 25 auto"]["B's sweeps"] == "gap-roll"


def test_budget_counts_runs_per_configuration_within_each_sweep():
    """Two factor sweeps share their searched params (hence config_key) but trained different configs."""
    df = pd.concat(
        [factor_rows("gap-lr", {"train.lr": 0.0002}, 0.0), factor_rows("gap-eps", {"adv.eps": 0.15}, 0.0)],
        ignore_index=True,
    )
    df["config_key"] = "samekey"
    assert budget(df)["seeds"].endswith("runs per configuration: 2-2")


def run_dashboard(*args):
    return subprocess.run(
        [sys.executable, "dashboards/robustness_gap.py", *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dashboard_rewrites_only_the_generated_block(tmp_path):
    rows = tmp_path / "rows.parquet"
    pd.concat([make_rows(), factor_rows("gap-lr", {"train.lr": 0.0002}, -0.1)], ignore_index=True).to_parquet(rows)
    page = tmp_path / "gap.md"
    page.write_text("# prose\n<!-- factor-table:start -->\nold\n<!-- factor-table:end -->\nmore prose\n")
    plot = tmp_path / "figs" / "forest.png"
    plot.parent.mkdir()
    proc = run_dashboard("--parquet", str(rows), "--page", str(page), "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    assert text.startswith("# prose\n<!-- factor-table:start -->\nGenerated by `python dashboards/robustness_gap.py")
    assert "| lr 2e-4 (authors) vs 2e-3 | 2 / 2 | -0.100 [" in text and "old" not in text
    assert "](figs/forest.png)" in text and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert text.endswith("<!-- factor-table:end -->\nmore prose\n")


def test_dashboard_rewrites_a_named_block_and_leaves_the_other(tmp_path):
    rows = tmp_path / "rows.parquet"
    pd.concat([make_rows(), factor_rows("gap-lr", {"train.lr": 0.0002}, -0.1)], ignore_index=True).to_parquet(rows)
    page = tmp_path / "gap.md"
    first = "<!-- factor-table:start -->\nten epochs\n<!-- factor-table:end -->\n"
    page.write_text(f"{first}<!-- factor-table-60:start -->\nold\n<!-- factor-table-60:end -->\n")
    proc = run_dashboard("--parquet", str(rows), "--page", str(page), "--block", "factor-table-60")
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    assert text.startswith(first) and "old" not in text and "| lr 2e-4 (authors) vs 2e-3 | 2 / 2 | -0.100 [" in text
    proc = run_dashboard("--parquet", str(rows), "--page", str(page), "--block", "factor-table-100")
    assert proc.returncode == 2 and "factor-table-100:start" in proc.stderr


def test_dashboard_refuses_a_page_without_the_block(tmp_path):
    rows = tmp_path / "rows.parquet"
    make_rows().to_parquet(rows)
    page = tmp_path / "gap.md"
    page.write_text("# prose only\n")
    proc = run_dashboard("--parquet", str(rows), "--page", str(page))
    assert proc.returncode == 2 and "factor-table:start" in proc.stderr
    assert page.read_text() == "# prose only\n"
