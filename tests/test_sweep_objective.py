"""The sweep objective: robustness from the attack MS-SSIMs, the scalar score, the Pareto front."""

import math

import pytest

from radae.objective import (
    FID_KEYS,
    LATENT_KEY,
    LATENT_PAPER_KEY,
    MAXDAMAGE_KEY,
    MAXDAMAGE_PAPER_KEY,
    ObjectiveError,
    make_objective,
    pareto_front,
    robustness,
    robustness_paper,
    scalar_score,
)

LEVELS = (1.0, 3.0, 5.0)


def metrics_from(latent, damage, fid=None, fid_key=FID_KEYS[-1], paper_shift=-0.1):
    """Standard-MS-SSIM metrics, and paper-MS-SSIM ones ``paper_shift`` away (the paper's formula scores lower)."""
    out = {}
    for level, lat, dmg in zip(LEVELS, latent, damage, strict=True):
        out[LATENT_KEY.format(level=f"{level:g}")] = lat
        out[MAXDAMAGE_KEY.format(level=f"{level:g}")] = dmg
        out[LATENT_PAPER_KEY.format(level=f"{level:g}")] = lat + paper_shift
        out[MAXDAMAGE_PAPER_KEY.format(level=f"{level:g}")] = dmg + paper_shift
    if fid is not None:
        out[fid_key] = fid
    return out


def test_robustness_of_the_paper_numbers():
    # Paper appendix, MNIST robust GMM AE: latent 0.38/0.47/0.60, max damage 0.92/0.82/0.69.
    gmm = metrics_from((0.38, 0.47, 0.60), (0.92, 0.82, 0.69))
    expected = ((0.92 + 0.62) / 2 + (0.82 + 0.53) / 2 + (0.69 + 0.40) / 2) / 3
    assert robustness(gmm, LEVELS) == pytest.approx(expected)
    # ... which is more robust than the VAE's 0.55/0.78/0.89 and 0.64/0.27/0.08.
    vae = metrics_from((0.55, 0.78, 0.89), (0.64, 0.27, 0.08))
    assert robustness(gmm, LEVELS) > robustness(vae, LEVELS)


def test_robustness_bounds():
    perfect = metrics_from((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    broken = metrics_from((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    assert robustness(perfect, LEVELS) == 1.0 and robustness(broken, LEVELS) == 0.0
    assert robustness(perfect, (3.0,)) == 1.0


def test_scalar_score_formula():
    assert scalar_score(0.7, 0.0, 0.1) == pytest.approx(0.7)
    assert scalar_score(0.7, 39.37, 0.1) == pytest.approx(0.7 - 0.1 * math.log(40.37))
    assert scalar_score(0.7, -1e-15, 0.1) == pytest.approx(0.7)  # FID of identical sets
    # Better robustness or better (lower) FID both raise the score.
    assert scalar_score(0.8, 40, 0.1) > scalar_score(0.7, 40, 0.1)
    assert scalar_score(0.7, 20, 0.1) > scalar_score(0.7, 40, 0.1)
    assert scalar_score(0.7, 1000, 0.0) == 0.7


def test_derive_and_objective_modes():
    metrics = metrics_from((0.4, 0.5, 0.6), (0.9, 0.8, 0.7), fid=25.0)
    scalar = make_objective("scalar", 0.2)
    out = scalar.derive(metrics, LEVELS)
    assert out["robustness"] == pytest.approx(robustness(metrics, LEVELS))
    # robustness_paper: the same formula on the msssim_paper metrics (latent 0.3/0.4/0.5, damage 0.8/0.7/0.6),
    # reported beside R; the score keeps using R (the standard MS-SSIM).
    paper_r = ((0.8 + 0.7) / 2 + (0.7 + 0.6) / 2 + (0.6 + 0.5) / 2) / 3
    assert out["robustness_paper"] == pytest.approx(paper_r) == robustness_paper(metrics, LEVELS)
    assert out["robustness"] == pytest.approx(((0.9 + 0.6) / 2 + (0.8 + 0.5) / 2 + (0.7 + 0.4) / 2) / 3)
    assert out["fid"] == 25.0 and out["score"] == pytest.approx(out["robustness"] - 0.2 * math.log(26.0))
    assert (scalar.searcher_metric, scalar.searcher_mode) == ("score", "max")
    pareto = make_objective("pareto")
    assert (pareto.searcher_metric, pareto.searcher_mode) == (["robustness", "fid"], ["max", "min"])
    # Inception FID is preferred over the classifier FID when both exist.
    both = {**metrics, FID_KEYS[0]: 40.0}
    assert scalar.derive(both, LEVELS)["fid"] == 40.0


def test_missing_metrics_are_named():
    metrics = metrics_from((0.4, 0.5, 0.6), (0.9, 0.8, 0.7))
    with pytest.raises(ObjectiveError, match="no FID metric"):
        make_objective("scalar").derive(metrics, LEVELS)
    with pytest.raises(ObjectiveError, match=MAXDAMAGE_KEY.format(level="7")):
        robustness(metrics, (7.0,))
    standard_only = {k: v for k, v in metrics.items() if "msssim_paper" not in k} | {FID_KEYS[-1]: 10.0}
    with pytest.raises(ObjectiveError, match=MAXDAMAGE_PAPER_KEY.format(level="1")):
        make_objective("scalar").derive(standard_only, LEVELS)
    with pytest.raises(ValueError, match="fid_weight"):
        make_objective("scalar", -1.0)


def test_pareto_front():
    # (robustness up, FID down): (0.9, 50) and (0.6, 10) and (0.8, 20) trade off; (0.5, 60) and
    # (0.8, 30) are dominated; duplicates of a front point are both on the front.
    points = [(0.9, 50.0), (0.5, 60.0), (0.6, 10.0), (0.8, 20.0), (0.8, 30.0), (0.6, 10.0)]
    assert pareto_front(points) == [0, 2, 3, 5]
    assert pareto_front([]) == []
    assert pareto_front([(0.1, 1.0)]) == [0]


def test_report_exports_the_pareto_front(tmp_path):
    import pyarrow as pa

    from radae.analysis.report import export_report, pareto_table

    rows = [
        {
            "trial_id": "a",
            "status": "completed",
            "metric.robustness": 0.9,
            "metric.fid": 50.0,
            "param.loss.alpha": 0.95,
            "param.adv.method": "pgd",
        },
        {
            "trial_id": "b",
            "status": "completed",
            "metric.robustness": 0.5,
            "metric.fid": 60.0,
            "param.loss.alpha": 0.1,
            "param.adv.method": "fgsm",
        },
        {
            "trial_id": "c",
            "status": "completed",
            "metric.robustness": 0.6,
            "metric.fid": 10.0,
            "param.loss.alpha": 0.5,
            "param.adv.method": "fgsm",
        },
        {
            "trial_id": "d",
            "status": "pruned",
            "metric.robustness": None,
            "metric.fid": None,
            "param.loss.alpha": 0.3,
            "param.adv.method": "pgd",
        },
        {
            "trial_id": "e",
            "status": "completed",
            "metric.robustness": 0.99,
            "metric.fid": 5.0,
            "param.loss.alpha": 1.0,
            "param.adv.method": "pgd",
        },
    ]
    table = pa.Table.from_pylist(rows)
    assert list(pareto_table(table)["trial_id"]) == ["e"]  # e dominates every other trial
    assert list(pareto_table(pa.Table.from_pylist(rows[:4]))["trial_id"]) == ["c", "a"]
    files = export_report(pa.Table.from_pylist(rows[:4]), tmp_path)
    assert [f.name for f in files] == ["pareto.csv", "pareto.parquet", "pareto.png", "sensitivity.png"]
    assert all(f.stat().st_size > 0 for f in files)
    assert (tmp_path / "pareto.csv").read_text().splitlines()[0].startswith("trial_id")
