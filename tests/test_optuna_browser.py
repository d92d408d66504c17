"""optuna-dashboard on a sweep's study: its page is what radae links, and it names the objectives.

The study is created by :func:`radae.sweep.searcher.build_searcher` (as a sweep does) in a SQLite
file, two trials told; optuna-dashboard serves it on loopback and headless chromium renders the
page :func:`study_page` gives, network cut. Checked without any click: the study's own page (its
name), the objective named ``score``, never "Objective 0". Screenshot: runs/browser/optuna-study-page.png.
"""

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from browser import CHROMIUM, Elements, dump_dom, screenshot

from cluster.stack import free_port, stop_service
from radae.objective import make_objective
from radae.store.studies import study_page
from radae.sweep.searcher import build_searcher
from radae.sweep.space import SearchSpace

ARTIFACTS = Path(__file__).parents[1] / "runs" / "browser"
GRID = {"loss.alpha": {"type": "grid", "values": [0.5, 0.95]}}


def test_metric_names_and_study_page(tmp_path):
    db = tmp_path / "o.db"
    build_searcher(SearchSpace.from_dict(GRID), make_objective("scalar"), study_db=db, study_name="s1")
    build_searcher(SearchSpace.from_dict(GRID), make_objective("pareto"), study_db=db, study_name="s2")
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    assert optuna.load_study(study_name="s1", storage=storage).metric_names == ["score"]
    assert optuna.load_study(study_name="s2", storage=storage).metric_names == ["robustness", "fid"]
    assert study_page("http://127.0.0.1:9/", db, "s2") == "http://127.0.0.1:9/dashboard/studies/2"
    assert study_page("http://127.0.0.1:9", db, "nope") == "http://127.0.0.1:9/dashboard"  # the list, not an error
    assert study_page("http://127.0.0.1:9", tmp_path / "none.db", "s1") == "http://127.0.0.1:9/dashboard"


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")
def test_the_study_page_names_the_objective(tmp_path):
    db = tmp_path / "o.db"
    searcher = build_searcher(SearchSpace.from_dict(GRID), make_objective("scalar"), study_db=db, study_name="sw-1")
    study = searcher.study
    for alpha, score in ((0.5, 0.31), (0.95, 0.42)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"loss.alpha": alpha},
                distributions={"loss.alpha": optuna.distributions.CategoricalDistribution([0.5, 0.95])},
                values=[score],
            )
        )
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
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(base, timeout=2)
                break
            except OSError:
                assert dash.poll() is None and time.time() < deadline
                time.sleep(0.5)
        url = study_page(base, db, "sw-1")
        assert url == f"{base}/dashboard/studies/1"
        text = " ".join(Elements(dump_dom(url, offline=True)).all_text)
        assert "sw-1" in text and "score" in text, text[:2000]
        assert "Objective 0" not in text
        screenshot(url, ARTIFACTS / "optuna-study-page.png", offline=True, size=(1600, 1000))
    finally:
        stop_service(dash.pid, dash.pid)
