"""The sweep report page's text (radae/analysis/html_report.py): budget, smoke banner, paper tables, directions."""

import math

import pytest
from browser import Elements
from sweep_rows import make_rows

from radae.analysis.html_report import (
    best_and_worst,
    build_page,
    grids_html,
    headline_metrics,
    metric_bounds,
    pareto_figure,
    sensitivity_figure,
)


def page_of(df) -> Elements:
    return Elements(build_page(df, "repro-test"))


def test_budget_under_the_title_states_data_epochs_seeds_and_protocol():
    df = make_rows()
    df["config.eval.levels"] = [[1.0, 3.0, 5.0]] * len(df)
    df["config.eval.attack_impl"] = "torch"
    df["config.data.data_dir"] = "/data/mnist"
    page = build_page(df, "repro-test")
    assert page.index("id='budget'") < page.index("id='headline'")  # right under the title
    budget = " ".join(Elements(page).text("budget").split())
    for part in (
        "dataset mnist (read from /data/mnist)",
        "epochs 2",
        "training images all (no train_limit)",
        "seeds 0, 1",
        "8 test images x 2 random starts x λ in {1, 3, 5}; 20 attack steps, attack implementation torch",
    ):
        assert part in budget, (part, budget)
    assert "smoke-banner" not in page


def test_smoke_and_reduced_budget_banners():
    df = make_rows()
    df["smoke_test"] = True
    df["config.data.train_limit"] = 2000
    text = " ".join(page_of(df).text("smoke-banner").split())
    assert text.startswith("Smoke run (--smoke-test): 2 epoch(s) on 2000 training images")
    assert "not comparable with the paper's" in text
    df["smoke_test"] = False
    assert "Reduced budget" in page_of(df).text("smoke-banner")


def test_paper_tables_show_only_what_the_sweep_trained():
    page = page_of(make_rows(ks=(1, 10), alphas=(0.95,)))
    t1, t2 = page.text("table1"), page.text("table2")
    assert "unimodal robust AE" in t1 and "robust GMM AE (K=10, alpha 0.95)" in t1
    assert "VAE" not in t1.replace("GMM AE", "")  # the baselines were not trained
    assert "K=1" in t2 and "K=10" in t2 and "K=25" not in t2 and "not run" not in t2
    notes = " ".join(page.all_text)
    assert "Not in this sweep: K=5, K=15, K=20, K=25." in notes
    assert "table3" not in page.text_by_id or "alpha=0.1" not in page.text("table3")


def test_paper_tables_only_for_the_papers_dataset():
    df = make_rows()
    df["config.data.name"] = "fashion-mnist"
    page = page_of(df)
    assert "table1" not in page.text_by_id and "table2" not in page.text_by_id
    note = " ".join(page.text("paper-tables-note").split())
    assert "The paper's tables report MNIST; this sweep trained on fashion-mnist, so they are not shown" in note


def test_headers_say_which_direction_is_better():
    page = build_page(make_rows(), "repro-test")
    for header in (
        "latent λ=1 (lower is better)",
        "max-damage λ=5 (higher is better)",
        "FID (lower is better)",
        "robustness (higher is better)",
        "score (higher is better)",
    ):
        assert f">{header}</th>" in page, header
    assert "best FID (lower is better)" in " ".join(Elements(page).text("headline").split())


def test_grids_belong_to_the_best_and_worst_configuration_by_mean():
    df = make_rows(ks=(1, 10, 25), alphas=(0.95,), extra_statuses=False)
    score = {  # K=25 holds both the best and the worst single run; K=10 has the best mean, K=1 the worst
        "t01a095s0": 0.55, "t01a095s1": 0.45,
        "t10a095s0": 0.70, "t10a095s1": 0.60,
        "t25a095s0": 0.04, "t25a095s1": 1.00,
    }  # fmt: skip
    df["metric.score"] = df["trial_id"].map(score)
    roles = best_and_worst(df)
    assert roles["best"] in ("t10a095s0", "t10a095s1")  # not the best single run t25a095s1
    assert roles["worst"] in ("t01a095s0", "t01a095s1")
    assert best_and_worst(df[df["config.prior.num_modes"] == 10]).keys() == {"best"}  # one configuration
    fid_roles = best_and_worst(df, "metric.fid")  # lower is better: the best has the lowest mean FID
    fid_mean = df.groupby("config.prior.num_modes")["metric.fid"].mean()
    best_k = int(df.set_index("trial_id").loc[fid_roles["best"], "config.prior.num_modes"])
    assert fid_mean[best_k] == fid_mean.min()
    heading = grids_html({f"best:{roles['best']}": {"grid_latent_3.png": b"png"}}, df)
    assert "best configuration by mean score: loss.alpha=0.95 prior.num_modes=10 (mean 0.6500 over 2 run(s))" in heading


def test_pareto_points_are_configuration_means_with_labels_and_clipped_whiskers():
    df = make_rows(ks=(1, 25), alphas=(0.95,), extra_statuses=False)
    # K=25: R of 0.99 and 0.70 (the t interval of the mean runs past 1); FID of 0.5 and 30 (past 0)
    df.loc[df["trial_id"] == "t25a095s0", ["metric.robustness", "metric.fid"]] = [0.99, 0.5]
    df.loc[df["trial_id"] == "t25a095s1", ["metric.robustness", "metric.fid"]] = [0.70, 30.0]
    fig = pareto_figure(df)
    configs = {t.name: t for t in fig.data if t.name.startswith("loss.alpha")}
    assert set(configs) == {"loss.alpha=0.95 prior.num_modes=1", "loss.alpha=0.95 prior.num_modes=25"}
    k25 = configs["loss.alpha=0.95 prior.num_modes=25"]
    assert list(k25.text) == ["loss.alpha=0.95 prior.num_modes=25"]  # labelled on the plot, not only in hover
    assert k25.y[0] == pytest.approx(0.845) and k25.x[0] == pytest.approx(15.25)  # the mean of the two seeds
    assert k25.y[0] + k25.error_y.array[0] == pytest.approx(1.0)  # R's interval clipped at 1
    assert k25.x[0] - k25.error_x.arrayminus[0] == pytest.approx(0.0)  # FID's clipped at 0
    assert k25.error_y.arrayminus[0] > 0.3  # the lower side keeps its full length
    front = next(t for t in fig.data if t.name.startswith("Pareto front"))
    assert len(front.x) >= 1 and all(x in (c.x[0] for c in configs.values()) for x in front.x)


def test_sensitivity_axis_spans_the_values_run():
    one = make_rows(ks=(1, 25), alphas=(0.95,), extra_statuses=False)
    lo, hi = sensitivity_figure(one, "param.loss.alpha").layout.xaxis.range
    assert 0.8 < lo < 0.95 < hi < 1.1  # not 0 to 1.9 around a single value
    lo, hi = sensitivity_figure(one, "param.prior.num_modes").layout.xaxis.range
    assert -1 < lo < 1 and 25 < hi < 27.5
    names = [t.name for t in sensitivity_figure(one, "param.loss.alpha").data]
    assert "paper, table 1 (R from its MS-SSIMs)" in names  # alpha 0.95 is inside what was run
    assert "paper, table 1 (R from its MS-SSIMs)" not in [
        t.name for t in sensitivity_figure(make_rows(ks=(1, 25), alphas=(0.1,)), "param.loss.alpha").data
    ]


def test_metric_bounds():
    assert metric_bounds("metric.robustness_paper") == (0.0, 1.0)
    assert metric_bounds("metric.latent_msssim_xt_recxa_l3_mean") == (0.0, 1.0)
    assert metric_bounds("metric.fid_classifier_mean")[0] == 0.0
    assert metric_bounds("metric.score") == (-math.inf, math.inf)


def test_headline_metrics_for_the_parent_run():
    df = make_rows()
    out = headline_metrics(df)
    assert out["configurations"] == 6
    assert out["score"] == pytest.approx(0.3725) and out["robustness"] == pytest.approx(0.7425)  # best means
    assert out["fid"] == pytest.approx(36.5)  # the lowest mean FID (FID is minimised)
    assert (
        headline_metrics(
            df.drop(columns=["metric.score", "metric.robustness", "metric.robustness_paper", "metric.fid"])
        )
        == {}
    )


def test_weak_attack_banner_names_only_trials_whose_attack_was_weaker():
    import pandas as pd

    from radae.analysis.html_report import weak_attack_banner

    df = pd.DataFrame(
        {
            "trial_id": ["t_1", "t_2"],
            "metric.max_damage_strength_lbfgsb_l5_mean": [0.97, 1.02],
            "metric.latent_strength_lbfgsb_l5_mean": [1.0, 1.01],
        }
    )
    banner = weak_attack_banner(df)
    assert "t_1" in banner and "max_damage_strength_lbfgsb_l5 0.970" in banner and "t_2" not in banner
    assert weak_attack_banner(df.assign(**{"metric.max_damage_strength_lbfgsb_l5_mean": [1.0, 1.1]})) == ""
    assert weak_attack_banner(pd.DataFrame({"trial_id": ["t_1"]})) == ""
