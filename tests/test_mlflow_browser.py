"""The MLflow link radae shows opens the sweep's trials as a flat list, sorted by the objective, in chromium.

A real MLflow server (SQLite, loopback), a parent run with four trial runs (2 configurations x 2
seeds) logged by :class:`radae.store.tracking.Tracker`, and the compare view the sweep stores. The
page is rendered headless with the network cut and only what is visible without any click is checked:
every trial by its name (seed included), best score first, the score column filled, and no collapsed
parent row in front. The screenshot stays in runs/browser/mlflow-compare.png.
"""

from pathlib import Path

import pandas as pd
import pytest
from browser import CHROMIUM, Elements, dump_dom, screenshot
from test_sweep_retry import mlflow_server  # noqa: F401  (the real MLflow server fixture)

from radae.analysis.html_report import headline_metrics, render_sweep
from radae.store.tracking import Tracker, compare_url, compared_metrics

ARTIFACTS = Path(__file__).parents[1] / "runs" / "browser"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)"),
]
SCORES = {(1, 0): 0.31, (1, 1): 0.32, (25, 0): 0.55, (25, 1): 0.56}


def test_the_mlflow_link_lists_the_trials_flat_by_objective(mlflow_server):  # noqa: F811
    uri = f"http://127.0.0.1:{mlflow_server}"
    tracker = Tracker(uri, "browser")
    parent = tracker.parent_run("flat", {"sweep.name": "alpha-modes"})
    rows = []
    for (k, seed), score in SCORES.items():
        tags = {"param.loss.alpha": 0.95, "param.prior.num_modes": k, "radae.seed": seed}
        run = tracker.trial_run(parent, "flat", f"t{k}s{seed}", {"loss.alpha": 0.95, "prior.num_modes": k}, tags)
        metrics = {"score": score, "robustness": score + 0.2, "fid": 40.0 - k / 10}
        tracker.log_metrics(run, metrics)
        tracker.end(run)
        rows.append({"sweep_id": "flat", "trial_id": f"t{k}s{seed}", "status": "completed", "seed": seed})
        rows[-1].update({"param.loss.alpha": 0.95, "param.prior.num_modes": k, "mlflow_run_id": run})
        rows[-1].update({f"metric.{m}": v for m, v in metrics.items()})
    tracker.compare_view("flat", parent, ["loss.alpha", "prior.num_modes"], compared_metrics((1, 3, 5)))
    tracker.log_metrics(parent, headline_metrics(pd.DataFrame(rows)))
    tracker.end(parent)

    url = compare_url(tracker, "flat")
    page, _ = render_sweep(pd.DataFrame(rows), "flat", mlflow_uri=uri, tracker=tracker)
    assert f"id='mlflow-link' href='{url}'" in page.replace("&amp;", "&")  # the report links this view

    text = [t.strip() for t in Elements(dump_dom(url, offline=True, budget_ms=30000)).all_text if t.strip()]
    names = [t for t in text if t.startswith("alpha=0.95 K=")]
    # every trial visible, named with its seed, best score first; the parent is not a row in front
    assert names == [
        "alpha=0.95 K=25 seed=1",
        "alpha=0.95 K=25 seed=0",
        "alpha=0.95 K=1 seed=1",
        "alpha=0.95 K=1 seed=0",
    ]
    assert "sweep-flat" not in text
    assert all(f"{s:g}" in text for s in SCORES.values()), text[-200:]  # the score column is filled
    assert tracker.client.get_run(parent).data.metrics["score"] == pytest.approx(0.555)  # the parent's headline
    screenshot(url, ARTIFACTS / "mlflow-compare.png", offline=True, size=(1600, 1000), budget_ms=30000)
