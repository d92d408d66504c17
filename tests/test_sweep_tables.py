"""Paper-format tables and docs/reproduction.md from a sweep table (radae/analysis/tables.py, dashboards/reproduction.py)."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats
from sweep_rows import make_rows

from radae.analysis import paper
from radae.analysis.tables import (
    NotComparableError,
    check_comparable,
    select,
    table1,
    table2,
    table3,
    table4,
    trend,
    visibility,
)

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
    assert set(k10) == {
        "paper",
        "radae, MS-SSIM paper formula (n=2)",
        "radae, MS-SSIM standard (n=2)",
    }
    # K=10, alpha 0.95, seeds 0 and 1: max-damage standard at lambda 3 = base - 0.06, base = 0.3 + 0.1 + 0.19 + 0.005 s
    # no std recorded: the seed-only bootstrap, whose 2-seed percentiles are the seed means pushed apart by sqrt(2)
    values = [0.3 + 0.1 + 0.19 + 0.005 * s - 0.06 for s in (0, 1)]
    mean, half = sum(values) / 2, math.sqrt(2) * 0.0025
    cell = f"{mean:.3f} [{mean - half:.3f}, {mean + half:.3f}]"
    assert k10["radae, MS-SSIM standard (n=2)"]["max-damage λ=3"] == cell
    paper_cell = f"{mean - 0.05:.3f} [{mean - 0.05 - half:.3f}, {mean - 0.05 + half:.3f}]"
    assert k10["radae, MS-SSIM paper formula (n=2)"]["max-damage λ=3"] == paper_cell
    assert k10["radae, MS-SSIM standard (n=2)"]["FID"].endswith("(classifier)")
    assert k10["paper"]["max-damage λ=3"] == "0.82" and k10["paper"]["FID"] == "39.37 (Inception-v3)"
    k5 = block(t2, "K=5")  # not in the grid (only pruned): not run, the paper's row still shown
    assert k5["radae, MS-SSIM standard"]["latent λ=1"] == "not run"
    assert k5["paper"]["latent λ=1"] == "0.43"


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
    proc = subprocess.run(
        [sys.executable, "dashboards/reproduction.py", "--parquet", str(rows), "--out", str(out)],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    for heading in ("## Table 1", "## Table 2", "## Table 3", "## Table 4", "## Perturbation visibility", "## Budget"):
        assert heading in text
    assert f"python dashboards/reproduction.py --parquet {rows} --out {out}" in text
    assert "| epochs | 2 |" in text and "classifier" in text and "bootstrap over seeds and images" in text
    assert "these rows carry no per-image values" in text
    # table 2 and the visibility table (3 rows per K each) + the K trend table
    assert text.count("| K=") == 2 * 3 * len(paper.TABLE2_K) + len(paper.TABLE2_K)
    assert "completed: 12, error: 1, pruned: 1" in text


def test_reproduction_command_bad_input(tmp_path):
    proc = subprocess.run(
        [sys.executable, "dashboards/reproduction.py", "--parquet", str(tmp_path / "missing.parquet")],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "missing.parquet: no such file" in proc.stderr


@pytest.mark.parametrize("fn", [table1, table2, table3])
def test_empty_sweep_reads_not_run(fn):
    df = make_rows().iloc[0:0]
    t = fn(df)
    assert (t[~t["source"].str.startswith("paper")]["latent λ=1"] == "not run").all()


def pgd_rows(sweep_id="repro-pgd", **changes):
    """Rows of a second sweep: K=10, alpha 0.95 trained with PGD (a string param), robustness lower by 0.2."""
    df = make_rows(ks=(10,), alphas=(0.95,), extra_statuses=False, sweep_id=sweep_id)
    df["param.adv.method"] = df["config.adv.method"] = "pgd"
    df["metric.robustness"] -= 0.2
    df["config_key"] = "pgdkey000000"
    for col, value in changes.items():
        df[col] = value
    return df


def test_string_params_select_fgsm_and_pgd_rows_apart():
    df = pd.concat([make_rows(), pgd_rows()], ignore_index=True)
    t1 = table1(df)
    pgd = block(t1, "PGD-trained robust GMM AE (K=10, alpha 0.95)")
    assert pgd["paper"]["latent λ=1"] == "0.39" and pgd["paper"]["FID"] == "39.10 (Inception-v3)"
    assert "radae, MS-SSIM standard (n=2)" in pgd
    # the FGSM block still holds only the 2 FGSM seeds, though the PGD sweep has the same K and alpha
    # (the first sweep's rows record no adv.method: they ran with the default, fgsm)
    gmm = block(t1, "robust GMM AE (K=10, alpha 0.95)")
    assert "radae, MS-SSIM standard (n=2)" in gmm
    assert len(select(df, "rae", {"prior.num_modes": 10, "loss.alpha": 0.95, "adv.method": "fgsm"})) == 2
    assert len(select(df, "rae", {"prior.num_modes": 10, "loss.alpha": 0.95, "adv.method": "pgd"})) == 2
    assert len(select(make_rows(), "rae", {"prior.num_modes": 10, "adv.method": "pgd"})) == 0  # not the default


def test_trend_slope_matches_least_squares():
    t = trend(make_rows(), "K")
    assert list(t["n"]) == [2, 0, 2, 0, 0, 2]
    fit = stats.linregress(
        [1, 1, 10, 10, 25, 25], [0.3 + 0.01 * k + 0.19 + 0.005 * s for k in (1, 10, 25) for s in (0, 1)]
    )
    assert t.attrs["slope"].startswith(f"{fit.slope:+.4f} ± ")
    assert "slope" not in trend(make_rows(ks=(10,)), "K").attrs  # one K value: no slope


def test_rows_of_different_budgets_or_fid_networks_refused():
    check_comparable(pd.concat([make_rows(), pgd_rows()], ignore_index=True))
    with pytest.raises(NotComparableError, match=r"config.train.epochs \(repro-pgd: 20; repro-test: 2\)"):
        check_comparable(pd.concat([make_rows(), pgd_rows(**{"config.train.epochs": 20})], ignore_index=True))
    with pytest.raises(NotComparableError, match="fid_network_sha256"):
        check_comparable(
            pd.concat(
                [make_rows().assign(fid_network_sha256="aa"), pgd_rows(fid_network_sha256="bb")], ignore_index=True
            )
        )


def test_reproduction_command_joins_sweeps_and_refuses_unlike(tmp_path):
    a, b, c = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"
    make_rows().to_parquet(a)
    pgd_rows().to_parquet(b)
    pgd_rows(**{"config.eval.images": 100}).to_parquet(c)
    out = tmp_path / "r.md"
    cmd = [sys.executable, "dashboards/reproduction.py", "--parquet", str(a), "--parquet", str(b), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert (
        "repro-pgd, repro-test" in text
        and "| PGD-trained robust GMM AE (K=10, alpha 0.95) | radae, MS-SSIM standard (n=2) |" in text
    )
    proc = subprocess.run(
        cmd[:-4] + ["--parquet", str(c), "--out", str(tmp_path / "x.md")],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "config.eval.images" in proc.stderr and not (tmp_path / "x.md").exists()


def test_unrecorded_config_value_counts_as_the_default():
    """An older sweep without config.eval.attack_impl ran the default (batched): comparable with 'batched',
    not with 'lbfgsb-authors'."""
    check_comparable(pd.concat([make_rows(), pgd_rows(**{"config.eval.attack_impl": "batched"})], ignore_index=True))
    with pytest.raises(NotComparableError, match="config.eval.attack_impl"):
        check_comparable(
            pd.concat([make_rows(), pgd_rows(**{"config.eval.attack_impl": "lbfgsb-authors"})], ignore_index=True)
        )


def test_visibility_and_table4_show_the_paper_beside_radae():
    df = make_rows().assign(**{"metric.clean_msssim_paper_x_recx_mean": 0.9})
    k = visibility(df, "K")
    k1 = block(k, "K=1")
    assert k1["paper"]["latent x-x_a λ=1"] == "0.99" and k1["paper"]["max-damage x-x_a λ=5"] == "0.86"
    a = block(visibility(df, "alpha"), "alpha=0.1")
    assert a["paper"]["max-damage x-x_a λ=5"] == "0.80"
    t4 = table4(df)
    ours = block(t4, paper.OURS_NAME)
    assert ours["paper"]["clean x-rec x"] == "0.97" and ours["paper"]["latent x_a-rec x_a λ=5"] == "0.55"
    assert set(ours) == {"paper", "radae, MS-SSIM paper formula (n=2)", "radae, MS-SSIM standard (n=2)"}
    assert ours["radae, MS-SSIM paper formula (n=2)"]["clean x-rec x"].startswith("0.900")
    assert ours["radae, MS-SSIM standard (n=2)"]["clean x-rec x"] == "not recorded"
    assert k1["radae, MS-SSIM paper formula (n=2)"]["latent x-x_a λ=1"] == "not recorded"
    assert block(t4, "VAE")["radae, MS-SSIM standard"]["clean x-rec x"] == "not run"
    assert list(dict.fromkeys(t4["model"])) == [row.model for row in paper.TABLE4]


def test_reproduction_page_uses_per_image_values_when_given(tmp_path):
    """--images: the intervals come from the per-image tables (paired by image in differences)."""
    import numpy as np

    df = make_rows()
    rng = np.random.default_rng(0)
    done = df[df["status"] == "completed"]
    metrics = [c for c in done if c.startswith("metric.") and c.endswith("_mean")] + ["metric.robustness"]
    images = pd.DataFrame(
        [
            {
                "sweep_id": r["sweep_id"],
                "trial_id": r["trial_id"],
                "image": i,
                "name": m[7:].removesuffix("_mean"),
                "value": float(np.clip(r[m] + e, 0, 1)) if "fid" not in m else r[m] + e,
            }
            for _, r in done.iterrows()
            for m in metrics
            for i, e in enumerate(rng.normal(0, 0.05, 4) - 0)
        ]
    )
    rows, imgs, out = tmp_path / "rows.parquet", tmp_path / "images.parquet", tmp_path / "r.md"
    df.to_parquet(rows)
    images.to_parquet(imgs)
    proc = subprocess.run(
        [
            sys.executable,
            "dashboards/reproduction.py",
            "--parquet",
            str(rows),
            "--images",
            str(imgs),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "from the sweeps' per-image values" in text
    k10 = block(table2(df, images), "K=10")["radae, MS-SSIM standard (n=2)"]["max-damage λ=3"]
    assert k10 != block(table2(df), "K=10")["radae, MS-SSIM standard (n=2)"]["max-damage λ=3"]
