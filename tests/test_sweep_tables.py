"""Paper-format tables and docs/reproduction.md from a sweep table (radae/sweep/tables.py, dashboards/reproduction.py)."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats
from sweep_rows import make_rows

from radae.sweep import paper
from radae.sweep.tables import table1, table2, table3

ROOT = Path(__file__).parents[1]
# The scripts import this checkout's radae (not another editable install of the venv).
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def block(table, name):
    return {r["source"]: r for r in table[table.iloc[:, 0] == name].to_dict("records")}


def test_table2_rows_values_and_not_run():
    df = make_rows()
    t2 = table2(df)
    assert list(dict.fromkeys(t2.iloc[:, 0])) == [f"K={k}" for k in paper.TABLE2_K]
    k10 = block(t2, "K=10")
    assert set(k10) == {"paper (not available, see note)", "radae, MS-SSIM paper formula (n=2)", "radae, MS-SSIM standard (n=2)"}
    # K=10, alpha 0.95, seeds 0 and 1: max-damage standard at lambda 3 = base - 0.06, base = 0.3 + 0.1 + 0.19 + 0.005 s
    values = [0.3 + 0.1 + 0.19 + 0.005 * s - 0.06 for s in (0, 1)]
    mean, half = sum(values) / 2, stats.t.ppf(0.975, 1) * stats.tstd(values) / math.sqrt(2)
    assert k10["radae, MS-SSIM standard (n=2)"]["max-damage λ=3"] == f"{mean:.3f} ± {half:.3f}"
    assert k10["radae, MS-SSIM paper formula (n=2)"]["max-damage λ=3"] == f"{mean - 0.05:.3f} ± {half:.3f}"
    assert k10["radae, MS-SSIM standard (n=2)"]["FID"].endswith("(classifier)")
    k5 = block(t2, "K=5")  # not in the grid (only pruned): not run
    assert k5["radae, MS-SSIM standard"]["latent λ=1"] == "not run"


def test_table1_paper_numbers_and_fid_networks():
    t1 = table1(make_rows())
    gmm = block(t1, "robust GMM AE (K=10, alpha 0.95)")
    assert gmm["paper"]["latent λ=1"] == "0.38" and gmm["paper"]["FID"] == "39.37 (Inception-v3)"
    assert "(classifier)" in gmm["radae, MS-SSIM standard (n=2)"]["FID"]
    assert block(t1, "VAE")["radae, MS-SSIM standard"]["FID"] == "not run"
    unimodal = block(t1, "unimodal robust AE")
    assert "radae, MS-SSIM paper formula (n=2)" in unimodal


def test_older_sweeps_without_paper_metric_or_keys():
    t3 = table3(make_rows(with_paper=False, with_keys=False, seeds=(0,)))
    a95 = block(t3, "alpha=0.95")
    assert a95["radae, MS-SSIM paper formula (n=1)"]["latent λ=1"] == "not recorded"
    assert a95["radae, MS-SSIM standard (n=1)"]["latent λ=1"].endswith("(n=1)")
    assert block(t3, "alpha=0.5")["radae, MS-SSIM standard"]["latent λ=1"] == "not run"


def test_reproduction_command_writes_markdown(tmp_path):
    rows = tmp_path / "rows.parquet"
    make_rows().to_parquet(rows)
    out = tmp_path / "reproduction.md"
    proc = subprocess.run([sys.executable, "dashboards/reproduction.py", "--parquet", str(rows), "--out", str(out)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    for heading in ("## Table 1", "## Table 2", "## Table 3", "## Budget", "## Which differences are significant"):
        assert heading in text
    assert f"python dashboards/reproduction.py --parquet {rows} --out {out}" in text
    assert "| epochs | 2 |" in text and "classifier" in text and "Welch" in text
    assert text.count("| K=") == 3 * len(paper.TABLE2_K)
    assert "completed: 12, error: 1, pruned: 1" in text


def test_reproduction_command_bad_input(tmp_path):
    proc = subprocess.run([sys.executable, "dashboards/reproduction.py", "--parquet", str(tmp_path / "missing.parquet")],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "missing.parquet: no such file" in proc.stderr


@pytest.mark.parametrize("fn", [table1, table2, table3])
def test_empty_sweep_reads_not_run(fn):
    df = make_rows().iloc[0:0]
    t = fn(df)
    assert (t[~t["source"].str.startswith("paper")]["latent λ=1"] == "not run").all()
