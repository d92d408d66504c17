"""End to end in a real browser: the sweep's report page, the MLflow runs page and optuna-dashboard.

A small smoke sweep (2 configurations, direct executor) on the local stack; then headless chromium
with the network cut (loopback allowed) opens: the report the sweep wrote to S3 (from disk), the
MLflow compare view of the sweep (experiment opens on runs, trials named by their values, compared
columns), and optuna-dashboard's page of the sweep's study. Screenshots go to runs/browser/.
"""

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from browser import CHROMIUM, Elements, dump_dom, screenshot

from cluster.stack import free_port, stop_service
from radae.store.tracking import COMPARE_URL_TAG, ROLE_TAG, SWEEP_TAG, Tracker

from .conftest import ROOT
from .test_sweep_e2e import settings_of, submit, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)"),
]
SHOTS = ROOT / "runs" / "browser"


def test_report_mlflow_and_optuna_pages(live_stack, measurements, tmp_path):
    live, sweep = live_stack, f"dash-{uuid.uuid4().hex[:6]}"
    # One seed per configuration keeps it at 2 trials (the smoke definition repeats each over 2 seeds).
    proc = submit(live, sweep, ["--num-samples", "2", "--seeds", "1", "--executor", "direct"])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    # 1. The report the sweep stored beside its results, opened from disk.
    settings = settings_of(live)
    key = settings.key("reports", f"sweep={sweep}", "report.html")
    page = tmp_path / "report.html"
    page.write_bytes(settings.boto3_client().get_object(Bucket=settings.bucket, Key=key)["Body"].read())
    dom = Elements(dump_dom(page.as_uri(), offline=True))
    assert sorted(p["data-param"] for p in dom.with_class("sensitivity-plot", "div")) == [
        "param.loss.alpha",
        "param.prior.num_modes",
    ]
    assert len(dom.with_class("main-svg")) >= 3 and "K=1" in dom.text("table2")
    links = dom.with_class("run-link", "a")
    assert len(links) == 2 and all(a["href"].startswith(live["env"]["MLFLOW_TRACKING_URI"]) for a in links)
    assert len(dom.with_class("attack-grid", "img")) >= 2  # best and worst trial's grids from MLflow artifacts
    shot = screenshot(page.as_uri(), SHOTS / "report-e2e.png", offline=True)
    # Rebuilding it from the bucket and MLflow (what a user runs): timed.
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "dashboards/sweep_report.py", sweep, "--out", str(tmp_path / "rebuilt.html")],
        cwd=ROOT,
        env={**live["env"], "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    measurements["report_build_seconds"] = round(time.time() - t0, 1)
    assert out.returncode == 0, out.stderr
    measurements["report_screenshot"] = {"path": str(shot), "bytes": shot.stat().st_size}

    # 2. MLflow: the compare view of this sweep, trials named by what differs, compared columns shown.
    tracker = Tracker(live["env"]["MLFLOW_TRACKING_URI"])
    (parent,) = tracker.client.search_runs(
        [tracker.experiment_id], f"tags.`{SWEEP_TAG}` = '{sweep}' and tags.`{ROLE_TAG}` = 'sweep'"
    )
    assert "report/report.html" in {a.path for a in tracker.client.list_artifacts(parent.info.run_id, "report")}
    url = f"{live['env']['MLFLOW_TRACKING_URI']}/{parent.data.tags[COMPARE_URL_TAG]}"
    names = {r.info.run_name for r in tracker.trial_runs(sweep)}
    assert all(n.startswith("alpha=") or n.startswith("K=") for n in names), names
    assert all(" seed=" in n for n in names), names
    text = " ".join(Elements(dump_dom(url, offline=True, budget_ms=30000)).all_text)
    # The shared view is applied (parent filter, sorted by score, params first): the trials are listed
    # flat, each visible by its name without expanding anything, the parent run not in front of them.
    assert "shared view" in text and "prior.num_mod" in text, text[-3000:]
    assert all(n in text for n in names) and f"sweep-{sweep}" not in text, text[-3000:]
    assert {"score", "robustness", "fid"} <= set(parent.data.metrics)  # the parent carries the headline
    screenshot(url, SHOTS / "mlflow-runs.png", offline=True, size=(1600, 1000), budget_ms=30000)

    # 3. optuna-dashboard on the sweep's study (what cluster/start_stack.sh --optuna-dashboard starts).
    db = live["work"] / sweep / "optuna.db"
    port = free_port()
    dash = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "optuna-dashboard"),
            f"sqlite:///{db}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        import urllib.request

        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ok(base), "optuna-dashboard", timeout=120, interval=0.5)
        studies = json.loads(urllib.request.urlopen(f"{base}/api/studies", timeout=10).read())
        (study,) = [s for s in studies["study_summaries"] if s["study_name"] == sweep]
        study_url = f"{base}/dashboard/studies/{study['study_id']}"
        text = " ".join(Elements(dump_dom(study_url, offline=True)).all_text)
        assert sweep in text, text[:2000]
        screenshot(study_url, SHOTS / "optuna-study.png", offline=True, size=(1600, 1000))
    finally:
        stop_service(dash.pid, dash.pid)


def _ok(url):
    import urllib.request

    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False
