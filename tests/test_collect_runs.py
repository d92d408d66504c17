"""dashboards/collect_runs.py and analysis.sources.load_runs: evaluated training runs as a sweep's rows and
per-image table, which the reproduction page then reads with seeds x images intervals; dashboards/compare_sets.py:
two such sets of different budgets, configuration by configuration."""

import json
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radae.analysis.sources import load_runs
from radae.analysis.tables import reproduction_markdown, table2
from radae.config import RunConfig, apply_overrides
from radae.objective import robustness_paper, with_robustness

ROOT = Path(__file__).resolve().parents[1]
collect = runpy.run_path(str(ROOT / "dashboards" / "collect_runs.py"), run_name="collect_runs")
compare_sets = runpy.run_path(str(ROOT / "dashboards" / "compare_sets.py"), run_name="compare_sets")
LEVELS = (1.0, 3.0, 5.0)
IMAGES = (7, 11, 42, 99)
ATTACK_NAMES = (
    "latent_msssim_xt_recxa_l{lv}",
    "latent_msssim_paper_xt_recxa_l{lv}",
    "max_damage_msssim_recx_recxa_l{lv}",
    "max_damage_msssim_paper_recx_recxa_l{lv}",
)


def write_run(
    root: Path, name: str, k: int, seed: int, base: float, *, images: bool = True, epochs: int = 60, trials: int = 2
) -> Path:
    """A run folder as radae.train + radae.evaluate leave it: config.json, eval/eval.json, eval/images.parquet."""
    folder = root / name
    (folder / "eval").mkdir(parents=True)
    cfg = apply_overrides(
        RunConfig(),
        {
            "prior.num_modes": k,
            "train.seed": seed,
            "train.epochs": epochs,
            "train.out_dir": str(folder),
            "probe.every": 1 + seed,  # monitoring only: not a different configuration
        },
    )
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    rng = np.random.default_rng(seed + 10 * k)
    per_image = {
        template.format(lv=f"{lv:g}"): {i: float(np.clip(base + rng.normal(0, 0.05), 0, 1)) for i in IMAGES}
        for template in ATTACK_NAMES
        for lv in LEVELS
    }
    metrics = {f"{n}_mean": float(np.mean(list(v.values()))) for n, v in per_image.items()}
    metrics |= {f"{n}_std": 0.05 for n in per_image} | {"fid_classifier_mean": 40.0 + k, "fid_classifier_std": 0.3}
    eval_config = {**cfg.to_dict()["eval"], "trials": trials, "images": len(IMAGES)}
    doc = {"metrics": metrics, "rows": [], "eval_config": eval_config, "wall_s": 90.0}
    (folder / "eval" / "eval.json").write_text(json.dumps(doc))
    (folder / "summary.json").write_text(json.dumps({"wall_seconds": 600.0, "device": "cpu", "epochs": epochs}))
    if images:
        flat = [(i, n, v) for n, vals in with_robustness(per_image, LEVELS).items() for i, v in vals.items()]
        pd.DataFrame(flat, columns=["image", "name", "value"]).to_parquet(folder / "eval" / "images.parquet")
    return folder


@pytest.fixture
def runs(tmp_path):
    return [write_run(tmp_path, f"k{k}-s{s}", k, s, 0.5 + 0.01 * k) for k in (1, 10) for s in (0, 1, 2)]


def test_runs_become_completed_rows_with_their_differences_as_params_and_per_image_values(runs):
    rows, images = load_runs(runs, "train60-test")
    assert len(rows) == 6 and set(rows["status"]) == {"completed"} and set(rows["sweep_id"]) == {"train60-test"}
    # seeds, paths and probe settings aside
    assert sorted(c for c in rows if c.startswith("param.")) == ["param.prior.num_modes"]
    assert rows["seed"].tolist() == [0, 1, 2, 0, 1, 2]
    assert rows["config.eval.trials"].tolist() == [2] * 6  # the evaluation's settings, not the run's defaults
    assert rows["wall_seconds"].tolist() == [690.0] * 6 and set(rows["device"]) == {"cpu"}  # training + evaluation
    first = json.loads((runs[0] / "eval" / "eval.json").read_text())["metrics"]
    assert rows["metric.robustness_paper"].iloc[0] == pytest.approx(robustness_paper(first, LEVELS))
    # The per-image table has the runs' trial ids, and each run's image mean of R is its row's R.
    assert set(images["trial_id"]) == set(rows["trial_id"]) and set(images["image"]) == set(IMAGES)
    own = images[(images["trial_id"] == "k1-s0") & (images["name"] == "robustness_paper")]
    assert own["value"].mean() == pytest.approx(rows["metric.robustness_paper"].iloc[0])


def test_the_reproduction_page_reads_them_with_seeds_x_images_intervals(runs):
    rows, images = load_runs(runs, "train60-test")
    t2 = table2(rows, images)
    ours = t2[(t2["K (alpha 0.95)"] == "K=1") & t2["source"].str.startswith("radae")]
    assert len(ours) == 2 and ours["latent λ=3"].str.contains(r"\[").all()  # an interval, not "not run"
    assert ours["source"].str.contains(r"\(n=3\)").all()
    page = reproduction_markdown(rows, "python dashboards/collect_runs.py ...", images)
    assert "train60-test" in page and "from the sweeps' per-image values" in page
    assert "| wall time | 69.0 min summed over trials |" in page


def test_cli_writes_both_tables_and_rejects_what_is_not_an_evaluated_run(runs, tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(tmp_path / "k*-s*"), "--sweep-id", "t", "--rows", str(out / "r.parquet")]
    assert collect["main"]([*args, "--images", str(out / "i.parquet")]) == 0
    assert len(pd.read_parquet(out / "r.parquet")) == 6 and len(pd.read_parquet(out / "i.parquet")) > 0
    assert "settings that differ: prior.num_modes" in capsys.readouterr().out

    (tmp_path / "k25-s0").mkdir()  # trained but never evaluated
    (tmp_path / "k25-s0" / "config.json").write_text(json.dumps(RunConfig().to_dict()))
    assert collect["main"](args) == 2
    assert "k25-s0: no eval/eval.json" in capsys.readouterr().err
    (tmp_path / "k25-s0" / "eval").mkdir()
    (tmp_path / "k25-s0" / "eval" / "eval.json").write_text("{truncated")
    assert collect["main"](args) == 2
    assert "k25-s0: unreadable config.json, summary.json or eval/eval.json" in capsys.readouterr().err
    assert collect["main"]([str(tmp_path / "nothing*"), *args[1:]]) == 2
    assert "no run folder matches" in capsys.readouterr().err


def test_without_per_image_values_the_rows_still_load_but_asking_for_them_is_an_error(tmp_path, capsys):
    write_run(tmp_path, "a-s0", 1, 0, 0.5, images=False)
    write_run(tmp_path, "a-s1", 1, 1, 0.5)
    rows, images = load_runs(sorted(tmp_path.glob("a-s*")), "t")
    assert len(rows) == 2 and images is None
    args = [str(tmp_path / "a-s*"), "--sweep-id", "t", "--rows", str(tmp_path / "r.parquet")]
    assert collect["main"]([*args, "--images", str(tmp_path / "i.parquet")]) == 2
    assert "images.parquet" in capsys.readouterr().err


def test_two_budgets_compared_configuration_by_configuration_and_only_under_one_protocol(tmp_path, capsys):
    short = [write_run(tmp_path / "10", f"k{k}-s{s}", k, s, 0.6, epochs=10) for k in (1, 10) for s in (0, 1, 2)]
    long = [write_run(tmp_path / "60", f"k{k}-s{s}", k, s, 0.5, epochs=60) for k in (1, 10) for s in (0, 1, 2)]
    files = {}
    for name, runs in (("a", short), ("b", long)):
        rows, images = load_runs(runs, f"train-{name}")
        rows.to_parquet(tmp_path / f"{name}.parquet")
        images.to_parquet(tmp_path / f"{name}-images.parquet")
        files[name] = [f"--{name}", str(tmp_path / f"{name}.parquet")]
        files[name] += [f"--{name}-images", str(tmp_path / f"{name}-images.parquet")]
    assert compare_sets["main"]([*files["a"], *files["b"], "--by", "prior.num_modes"]) == 0
    out = capsys.readouterr().out
    assert "paired by image" in out
    k1 = next(line for line in out.splitlines() if line.startswith("| prior.num_modes=1 |"))
    # Every MS-SSIM is about 0.1 lower after 60 epochs in these runs (0.6 -> 0.5 plus noise), with an interval.
    md3 = k1.split(" | ")[3]
    before, after = (float(v) for v in md3.split(",")[0].split(" → "))
    assert before - after == pytest.approx(0.1, abs=0.03) and "[-0.1" in md3
    assert "| 3 / 3 |" in k1
    # Another evaluation protocol (10 starts instead of 2): not the same attacked values, refused by name.
    other = [write_run(tmp_path / "o", f"k1-s{s}", 1, s, 0.5, trials=10) for s in (0, 1)]
    rows, _ = load_runs(other, "other")
    rows.to_parquet(tmp_path / "o.parquet")
    assert compare_sets["main"]([*files["a"], "--b", str(tmp_path / "o.parquet"), "--by", "prior.num_modes"]) == 2
    assert "differ in config.eval.trials (2 vs 10)" in capsys.readouterr().err
    assert compare_sets["main"]([*files["a"], *files["b"], "--by", "prior.nonsense"]) == 2
    assert "not a setting of both sets" in capsys.readouterr().err
    # Grouping by a setting that does not name one configuration (both K here) would average K 1 with K 10.
    assert compare_sets["main"]([*files["a"], *files["b"], "--by", "loss.alpha"]) == 2
    assert (
        "several configurations at loss.alpha=0.95: they differ in prior.num_modes (add to --by)"
        in capsys.readouterr().err
    )
