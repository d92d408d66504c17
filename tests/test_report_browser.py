"""The sweep report page (radae/analysis/html_report.py) opened from disk in headless chromium, network cut.

Checks what a reader relies on: the paper tables with their rows, one sensitivity plot per
searched parameter rendered by plotly (so plotly.js came from the page itself), the Pareto plot,
the attack grids, one MLflow link per trial. The screenshot stays in runs/browser/ as a test artifact.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from browser import CHROMIUM, Elements, dump_dom, screenshot
from sweep_rows import make_rows

from radae.analysis.html_report import attack_grids, best_and_worst, build_page, run_links
from radae.eval_plots import attack_grid

ROOT = Path(__file__).parents[1]
ARTIFACTS = ROOT / "runs" / "browser"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    df = make_rows()
    roles = best_and_worst(df)
    for role, trial in roles.items():  # real attack-grid PNGs in the two trials' out dirs
        out = tmp / trial
        (out / "eval").mkdir(parents=True)
        gen = torch.Generator().manual_seed(0)
        attack_grid(
            out / "eval" / "grid_latent_3.png",
            [torch.rand(4, 1, 32, 32, generator=gen) for _ in range(5)],
            title=f"{role} latent",
        )
        df.loc[df["trial_id"] == trial, "config.train.out_dir"] = str(out)
    links, run_ids = run_links(df, "http://127.0.0.1:5000", None)
    page = build_page(
        df,
        "repro-test",
        links=links,
        grids=attack_grids(df, run_ids),
        mlflow_url="http://127.0.0.1:5000/#/experiments/1/runs",
    )
    path = tmp / "report.html"
    path.write_text(page)
    return path, df, roles


def test_page_is_self_contained(report):
    path, _, _ = report
    tags = Elements(path.read_text()).tags
    assert [t for t, a in tags if t == "script" and a.get("src")] == []  # plotly.js is inline
    assert [a for t, a in tags if t == "link" and a.get("href", "").startswith("http")] == []
    assert all(a["src"].startswith("data:image/png;base64,") for t, a in tags if t == "img")


def test_report_renders_offline_with_expected_elements(report):
    path, df, roles = report
    dom = Elements(dump_dom(path.as_uri(), offline=True))
    plots = dom.with_class("sensitivity-plot", "div")
    assert sorted(p["data-param"] for p in plots) == ["param.loss.alpha", "param.prior.num_modes"]
    # plotly drew every figure (an SVG root per plot) although no request could leave the machine
    assert len(dom.with_class("main-svg")) >= 2 * (len(plots) + 1)
    for table_id, expected in (
        ("table1", ["unimodal robust AE", "robust GMM AE"]),  # the baselines were not trained
        ("table2", [f"K={k}" for k in (1, 10, 25)]),  # only the rows the sweep trained
        ("table3", [f"alpha={a}" for a in ("0.1", "0.95")]),
    ):
        text = dom.text(table_id)
        assert all(name in text for name in expected), (table_id, text[:500])
        assert "MS-SSIM paper formula" in text and "MS-SSIM standard" in text
    assert "K=5" not in dom.text("table2") and "Not in this sweep: K=5, K=15, K=20." in " ".join(dom.all_text)
    assert "(classifier)" in dom.text("table1") and "(Inception-v3)" in dom.text("table1")
    links = dom.with_class("run-link", "a")
    assert len(links) == int((df["status"] == "completed").sum())
    assert all(a["href"].startswith("http://127.0.0.1:5000/#/experiments/1/runs/run") for a in links)
    assert len(dom.with_class("attack-grid", "img")) == len(roles) == 2
    grids = " ".join(" ".join(dom.all_text).split())
    assert "best configuration by mean score: loss.alpha=0.95 prior.num_modes=25 (mean 0.3725 over 2 run(s))" in grids
    assert "worst configuration by mean score: loss.alpha=0.1 prior.num_modes=1" in grids
    assert "trials: 12 completed, 1 pruned, 1 failed" in " ".join(dom.text("headline").split())
    # the budget is on the page as rendered, under the title, without any click
    budget = " ".join(dom.text("budget").split())
    assert "dataset mnist" in budget and "epochs 2" in budget and "8 test images x 2 random starts" in budget
    assert "latent λ=1 (lower is better)" in dom.text("table1")


def test_report_screenshot(report):
    path, _, _ = report
    shot = screenshot(path.as_uri(), ARTIFACTS / "report.png", offline=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a rendered page, not a blank one


def test_dashboard_script_builds_page(tmp_path):
    rows = tmp_path / "rows.parquet"
    make_rows().to_parquet(rows)
    out = tmp_path / "page.html"
    proc = subprocess.run(
        [sys.executable, "dashboards/sweep_report.py", "--parquet", str(rows), "--out", str(out), "--mlflow-uri", ""],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and out.stat().st_size > 1_000_000  # plotly.js inside
    assert 'id="table1"' in out.read_text()
    folder = tmp_path / "reports"
    folder.mkdir()
    args = ["--parquet", str(rows), "--out", str(folder), "--mlflow-uri", ""]
    proc = subprocess.run(
        [sys.executable, "dashboards/sweep_report.py", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr  # a folder: its report.html, not IsADirectoryError
    assert f"wrote {folder / 'report.html'}" in proc.stdout and (folder / "report.html").stat().st_size > 1_000_000
