"""Per-configuration statistics and significance (radae/analysis/aggregate.py) on hand-made tables."""

import math

import pandas as pd
import pytest
from scipy import stats

from radae.analysis.aggregate import compare, fmt, holm, summarize, with_config

# t quantiles t_{0.975, df} from tables: df 1 -> 12.7062, df 2 -> 4.3027.
T975 = {1: 12.706204736174698, 2: 4.302652729749464}


def table(with_keys: bool) -> pd.DataFrame:
    rows = [  # configuration A: values 1, 2, 3 (mean 2, std 1); B: 4, 6 (mean 5, std sqrt 2); C: one run
        {"param.loss.alpha": 0.5, "param.seed": 0, "metric.robustness": 1.0},
        {"param.loss.alpha": 0.5, "param.seed": 1, "metric.robustness": 2.0},
        {"param.loss.alpha": 0.5, "param.seed": 2, "metric.robustness": 3.0},
        {"param.loss.alpha": 0.9, "param.seed": 0, "metric.robustness": 4.0},
        {"param.loss.alpha": 0.9, "param.seed": 1, "metric.robustness": 6.0},
        {"param.loss.alpha": 1.0, "param.seed": 0, "metric.robustness": 7.0},
        {"param.loss.alpha": 0.9, "param.seed": 2, "metric.robustness": 100.0, "status": "error"},
    ]
    df = pd.DataFrame(rows)
    df["status"] = df["status"].fillna("completed")
    if with_keys:
        df["config_key"] = df["param.loss.alpha"].map({0.5: "ka", 0.9: "kb", 1.0: "kc"})
        df["config_label"] = df["param.loss.alpha"].map(lambda a: f"loss.alpha={a}")
        df = df.rename(columns={"param.seed": "seed"})
    return df


@pytest.mark.parametrize("with_keys", [True, False])
def test_mean_std_ci_per_configuration(with_keys):
    s = summarize(table(with_keys), ["metric.robustness"]).set_index("config_label")
    assert len(s) == 3  # grouped by configuration, seeds pooled, the error row left out
    a = s.loc["loss.alpha=0.5"]
    assert a["metric.robustness:mean"] == 2.0 and a["metric.robustness:std"] == pytest.approx(1.0)
    assert a["metric.robustness:n"] == 3
    assert a["metric.robustness:ci_half"] == pytest.approx(T975[2] / math.sqrt(3), rel=1e-9)
    assert a["metric.robustness:ci_low"] == pytest.approx(2.0 - T975[2] / math.sqrt(3))
    b = s.loc["loss.alpha=0.9"]
    assert b["metric.robustness:mean"] == 5.0 and b["metric.robustness:std"] == pytest.approx(math.sqrt(2))
    assert b["metric.robustness:ci_half"] == pytest.approx(T975[1] * math.sqrt(2) / math.sqrt(2), rel=1e-9)
    c = s.loc["loss.alpha=1.0" if with_keys else "loss.alpha=1"]
    assert (
        c["metric.robustness:n"] == 1
        and math.isnan(c["metric.robustness:std"])
        and math.isnan(c["metric.robustness:ci_half"])
    )


def test_labels_from_params_exclude_the_seed():
    df = with_config(table(False))
    assert set(df["config_label"]) == {"loss.alpha=0.5", "loss.alpha=0.9", "loss.alpha=1"}


def test_welch_holm_against_hand_formula():
    pairs = compare(table(True), "metric.robustness").set_index(["key_a", "key_b"])
    ab = pairs.loc[("ka", "kb")]
    # Welch by hand: t = (2 - 5) / sqrt(1/3 + 2/2); df = (1/3 + 1)^2 / ((1/3)^2/2 + 1^2/1)
    se2 = 1 / 3 + 2 / 2
    t = (2 - 5) / math.sqrt(se2)
    dof = se2**2 / ((1 / 3) ** 2 / 2 + 1.0**2 / 1)
    p = 2 * stats.t.sf(abs(t), dof)
    assert ab["t"] == pytest.approx(t) and ab["p"] == pytest.approx(p)
    assert ab["p_holm"] == pytest.approx(min(1.0, p))  # the only pair with n >= 2 on both sides: m = 1
    assert ab["significant"] == ("yes" if p < 0.05 else "no")
    assert pairs.loc[("ka", "kc"), "significant"] == "n/a" and pairs.loc[("kb", "kc"), "significant"] == "n/a"


def test_welch_detects_a_clear_difference():
    df = pd.DataFrame(
        {
            "config_key": ["a"] * 4 + ["b"] * 4,
            "status": "completed",
            "metric.robustness": [0.50, 0.51, 0.49, 0.50, 0.70, 0.71, 0.69, 0.70],
        }
    )
    (row,) = compare(df, "metric.robustness").to_dict("records")
    assert row["significant"] == "yes" and row["diff"] == pytest.approx(-0.2)


def test_holm_step_down():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    out = holm([float("nan"), 0.02])
    assert math.isnan(out[0]) and out[1] == pytest.approx(0.02)


def test_unknown_metric_is_named():
    with pytest.raises(ValueError, match="metric.nope"):
        summarize(table(True), ["metric.nope"])


def test_fmt():
    assert fmt(0.51234, 0.01321) == "0.512 ± 0.013"
    assert fmt(0.5, math.nan, 1) == "0.500 (n=1)"
    assert fmt(math.nan) == "—"
