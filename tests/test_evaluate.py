"""radae.evaluate end to end on a briefly trained MNIST model: metrics, files, CLI and bad input."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import torch

from radae.config import ConfigError, EvalConfig, RunConfig, apply_overrides
from radae.evaluate import PAIRS, evaluate, main, pick_images
from radae.objective import robustness, robustness_paper
from radae.precision import bf16_supported

MNIST_DIR = "/work/shared/data/mnist"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    """A robust GMM autoencoder trained for a few hundred steps on real MNIST, and its checkpoint."""
    from radae.checkpoint import load_model
    from radae.data import DataError, load_dataset
    from radae.train import train

    overrides = {"data.name": "mnist", "data.data_dir": MNIST_DIR, "data.download": False, "data.train_limit": 5000}
    overrides |= {"train.epochs": 1, "train.max_steps_per_epoch": 150, "loss.weight_batches": 10}
    overrides |= {"train.out_dir": str(tmp_path_factory.mktemp("run")), "train.device": "cpu"}
    cfg = apply_overrides(RunConfig(), overrides)
    try:
        data = load_dataset(cfg.data)
    except DataError as err:
        pytest.skip(f"real MNIST not available: {err}")
    result = train(cfg, data=data, progress=False)
    _, model = load_model(result.checkpoint)
    return data, model, result.checkpoint


SMALL = {"images": 6, "trials": 2, "levels": (1.0, 3.0, 5.0), "attack_steps": 30, "fid_samples": 400}
SMALL |= {"fid_runs": 2, "classifier_epochs": 2, "feature_epochs": 1}


def test_pick_images_targets_another_class():
    labels = torch.arange(50) % 5
    idx, targets = pick_images(labels, 20, seed=0)
    assert len(set(idx.tolist())) == 20
    assert (labels[idx] != labels[targets]).all()
    same = torch.zeros(10, dtype=torch.long)
    idx, targets = pick_images(same, 10, seed=0)
    assert (idx != targets).all()


def test_celeba_latent_attack_targets_any_other_image_not_the_other_attribute_class():
    """method.md: the target is a random other image for CelebA, whose labels (Male) are only an attribute."""
    from radae.data import dataset_info

    assert dataset_info("celeba").class_targets is False
    assert all(dataset_info(name).class_targets for name in ("mnist", "fashion-mnist", "svhn"))
    labels = torch.arange(200) % 2
    idx, targets = pick_images(labels, 100, seed=0, by_class=False)
    assert (idx != targets).all()
    same = int((labels[idx] == labels[targets]).sum())
    assert 30 < same < 70  # about half the targets share the attribute, as random images do


@pytest.mark.slow
def test_evaluate_reports_every_named_metric_and_writes_files(trained, tmp_path):
    data, model, _ = trained
    flags = [p.requires_grad for p in model.parameters()]
    cfg = EvalConfig(**SMALL, feature_cache=str(tmp_path / "features"))
    res = evaluate(model, data, cfg, device="cpu", out_dir=tmp_path / "out", progress=False)
    m = res.metrics
    for lv in ("l1", "l3", "l5"):
        for key in (
            "latent_msssim_xt_recxa",
            "latent_l2_x_xa",
            "latent_loss_objective",
            "max_damage_msssim_recx_recxa",
        ):
            assert m[f"{key}_{lv}_mean"] >= 0 and m[f"{key}_{lv}_std"] >= 0
        assert m[f"latent_l2_x_xa_{lv}_mean"] <= float(lv[1:]) + 1e-4  # the perturbation respects lambda
        assert 0 <= m[f"max_damage_acc_source_{lv}_mean"] <= 1
    # Every pair is scored with both MS-SSIMs and L2, under names that say which (the contract sweeps read).
    for attack, pairs in PAIRS.items():
        for lv in ("l1", "l3", "l5"):
            for pair in pairs:
                for metric in ("msssim", "msssim_paper", "l2"):
                    assert {f"{attack}_{metric}_{pair}_{lv}_mean", f"{attack}_{metric}_{pair}_{lv}_std"} <= set(m)
            paper = m[f"{attack}_msssim_paper_recx_recxa_{lv}_mean"]
            assert 0 <= paper <= 1 and paper != m[f"{attack}_msssim_recx_recxa_{lv}_mean"]
    assert 0 < m["clean_msssim_paper_x_recx_mean"] < m["clean_msssim_x_recx_mean"] <= 1
    assert "fid_classifier_mean" in m and "fid_inception_mean" not in m and m["fid_classifier_mean"] > 0
    assert 0.1 < m["classifier_acc_clean"] <= 1 and 0 < m["clean_msssim_x_recx_mean"] <= 1
    # Robustness falls as lambda grows: the attack reaches the target / damages more.
    assert m["latent_loss_objective_l1_mean"] > m["latent_loss_objective_l5_mean"]
    assert m["max_damage_msssim_recx_recxa_l1_mean"] > m["max_damage_msssim_recx_recxa_l5_mean"]
    assert [p.requires_grad for p in model.parameters()] == flags
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["eval.json", "eval.parquet", "images.parquet", "attack_loss.png"]
        + [f"grid_{a}_l{lv}.png" for a in ("latent", "max_damage") for lv in (1, 3, 5)]
    )
    table = pq.read_table(out / "eval.parquet").to_pylist()
    assert {r["name"] for r in table} == {r["name"] for r in res.rows}
    assert set(table[0]) == {"name", "metric", "compared", "attack", "lambda", "mean", "std", "n"}
    row = next(r for r in table if r["name"] == "latent_msssim_xt_recxa_l3")
    assert (row["attack"], row["compared"], row["lambda"], row["n"]) == ("latent", "xt_recxa", 3.0, 12)
    assert row["mean"] == pytest.approx(m["latent_msssim_xt_recxa_l3_mean"])
    row = next(r for r in table if r["name"] == "max_damage_msssim_paper_recx_recxa_l3")
    assert (row["metric"], row["attack"], row["lambda"]) == ("msssim_paper", "max_damage", 3.0)
    assert row["mean"] == pytest.approx(m["max_damage_msssim_paper_recx_recxa_l3_mean"])
    doc = json.loads((out / "eval.json").read_text())
    assert doc["metrics"]["fid_classifier_mean"] == pytest.approx(m["fid_classifier_mean"])
    # Per attacked image: every per-image metric over the same 6 test images, whose mean is the metric's mean
    # (each image has the same number of random starts).
    assert set(res.images) >= {"latent_msssim_xt_recxa_l3", "clean_msssim_paper_x_recx", "max_damage_acc_source_l5"}
    ids = {frozenset(v) for v in res.images.values()}
    assert len(ids) == 1 and len(next(iter(ids))) == 6
    derived = {"robustness": robustness(m, cfg.levels), "robustness_paper": robustness_paper(m, cfg.levels)}
    for name, values in res.images.items():
        assert sum(values.values()) / 6 == pytest.approx(derived.get(name, m.get(f"{name}_mean"))), name
    # ... and the same values on disk, one row per image and metric, for the intervals of radae.analysis.
    on_disk = pq.read_table(out / "images.parquet").to_pandas()
    assert list(on_disk.columns) == ["image", "name", "value"]
    assert len(on_disk) == 6 * len(res.images) and set(on_disk["name"]) == set(res.images)
    r3 = on_disk[on_disk["name"] == "robustness_paper"].set_index("image")["value"]
    assert r3.to_dict() == pytest.approx(res.images["robustness_paper"])


def test_every_model_is_attacked_on_the_same_images_from_the_same_starts(trained, monkeypatch):
    """Images, targets and random starts come from eval.seed alone: another model (another training seed)
    gets the same ones, so configurations and seeds can be compared image by image."""
    import copy

    import radae.attacks.base as base

    data, model, _ = trained
    starts = []
    draw = base.random_start
    monkeypatch.setattr(base, "random_start", lambda *a, **k: starts.append(draw(*a, **k)) or starts[-1])
    other = copy.deepcopy(model)  # another model: its weights moved by noise
    with torch.no_grad():
        for param in other.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=torch.Generator().manual_seed(7)))
    cfg = EvalConfig(images=4, trials=2, levels=(1.0, 3.0), attack_steps=2, fid=False, classifier_epochs=0)
    first = evaluate(model, data, cfg, progress=False)
    second = evaluate(other, data, cfg, progress=False)
    # per evaluation: eval.attack_restarts (4) starts per row for each attack
    half = len(starts) // 2
    assert len(starts) == 2 * (4 + 4)
    assert all(torch.equal(starts[i], starts[half + i]) for i in range(half))
    assert first.images.keys() == second.images.keys()
    assert all(first.images[n].keys() == second.images[n].keys() for n in first.images)
    assert first.metrics["latent_msssim_xt_recxa_l3_mean"] != second.metrics["latent_msssim_xt_recxa_l3_mean"]


def test_cli_runs_on_a_checkpoint(trained, tmp_path, capsys):
    _, _, ckpt = trained
    argv = [str(ckpt), "--images", "4", "--trials", "1", "--levels", "1", "2", "--eval.attack_steps", "5"]
    argv += ["--no-fid", "--eval.classifier_epochs", "0", "--out", str(tmp_path / "o"), "--data-dir", MNIST_DIR]
    assert main(argv + ["--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "latent MS-SSIM(x_t,rec x_a)" in printed
    assert "fid_" not in json.loads((tmp_path / "o" / "eval.json").read_text())["metrics"]
    # the run's folder stands for its checkpoint
    argv[0] = str(ckpt.parent)
    argv[argv.index("--out") + 1] = str(tmp_path / "from-folder")
    assert main(argv + ["--quiet"]) == 0
    assert (tmp_path / "from-folder" / "eval.json").is_file()


def test_cli_runs_the_authors_lbfgsb_attack_and_records_it(trained, tmp_path):
    """--eval.attack_impl lbfgsb-authors with latent noise left on: same metric names, the settings say which attack."""
    _, _, ckpt = trained
    argv = [str(ckpt), "--images", "2", "--trials", "1", "--levels", "1", "3", "--eval.attack_impl", "lbfgsb-authors"]
    argv += [
        "--eval.lbfgsb_maxfun",
        "40",
        "--eval.decode_noise_latent",
        "0.4",
        "--eval.decode_noise_max_damage",
        "0.004",
    ]
    argv += ["--no-fid", "--eval.classifier_epochs", "0", "--data-dir", MNIST_DIR, "--quiet"]
    assert main(argv + ["--out", str(tmp_path / "lb")]) == 0
    assert main([str(ckpt), "--images", "2", "--trials", "1", "--levels", "1", "3", "--eval.attack_steps", "5", "--no-fid"]
                + ["--eval.classifier_epochs", "0", "--data-dir", MNIST_DIR, "--quiet", "--out", str(tmp_path / "pg")]) == 0  # fmt: skip
    lb = json.loads((tmp_path / "lb" / "eval.json").read_text())
    pg = json.loads((tmp_path / "pg" / "eval.json").read_text())
    assert lb["eval_config"]["attack_impl"] == "lbfgsb-authors" and lb["eval_config"]["decode_noise_latent"] == 0.4
    assert pg["eval_config"]["attack_impl"] == "batched"
    # The same metrics, except the batched attack's strength probe against L-BFGS-B (the reference itself).
    strength = {k for k in pg["metrics"] if "_strength_lbfgsb_" in k}
    assert len(strength) == 2 * 2 * 2 and all(pg["metrics"][k] > 0 for k in strength if k.endswith("_mean"))
    assert set(lb["metrics"]) == set(pg["metrics"]) - strength
    # Decode noise reaches the reconstructions: recon(x) vs recon(x_a) differ even where the attack is weak.
    assert lb["metrics"]["latent_l2_recx_recxa_l1_mean"] > 0


@pytest.mark.parametrize(
    "case,extra,message",
    [
        ("missing", [], "does not exist"),
        ("truncated", [], "is truncated or corrupt and cannot be read (1000 bytes, not a complete torch checkpoint"),
        ("folder", [], "is a folder without checkpoint.pt: give a checkpoint file or a training run's output folder"),
        ("foreign", [], "not a radae checkpoint"),
        ("ok", ["--levels", "1", "-1"], "lambda must be > 0"),
        ("ok", ["--images", "10001"], "test split has 10000"),
        ("ok", ["--inception-weights", "GARBAGE"], "do not load"),
        ("ok", ["--device", "gpu"], "must be cpu, cuda, cuda:N or auto"),
        ("ok", ["--eval.attack_impl", "lbfgs"], "eval.attack_impl 'lbfgs' is unknown; known: batched, lbfgsb-authors"),
        pytest.param(
            "ok",
            ["--device", "cuda"],
            "no CUDA device is available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA"),
        ),
    ],
)
def test_bad_input_fails_clearly_before_any_output(trained, tmp_path, capsys, case, extra, message):
    _, _, ckpt = trained
    path = {"missing": tmp_path / "nope.pt", "ok": ckpt}.get(case, tmp_path / f"{case}.pt")
    if case == "truncated":
        path.write_bytes(ckpt.read_bytes()[:1000])
    if case == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)
    if case == "folder":
        path.mkdir()
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00" * 64)
    extra = [str(garbage) if a == "GARBAGE" else a for a in extra]
    out = tmp_path / "out"
    rc = main([str(path), *extra, "--out", str(out), "--data-dir", MNIST_DIR, "--quiet", "--eval.attack_steps", "2"])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Error:" not in err  # no internal exception (IndexError: pop from empty list)
    assert not out.exists() or not any(out.iterdir())


def test_library_rejects_bad_requests_before_work(trained):
    data, model, _ = trained
    with pytest.raises(ConfigError, match="eval.images"):
        evaluate(model, data, EvalConfig(images=len(data.test) + 1), progress=False)
    with pytest.raises(ConfigError, match="eval.levels"):
        EvalConfig(levels=(1.0, 0.0))
    with pytest.raises(ConfigError, match="eval.attack_impl 'lbfgs' is unknown"):
        evaluate(model, data, EvalConfig(attack_impl="lbfgs"), progress=False)


@pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="no bf16 on this CPU")
def test_bf16_evaluation_keeps_measurements_in_fp32_and_close_to_fp32(trained, tmp_path):
    data, model, _ = trained
    small = SMALL | {"classifier_epochs": 0, "feature_cache": str(tmp_path / "features")}
    fp32 = evaluate(model, data, EvalConfig(**small), device="cpu", progress=False).metrics
    bf16 = evaluate(model, data, EvalConfig(**small, precision="bf16"), device="cpu", progress=False).metrics
    # Clean reconstructions and their metrics are outside eval.precision: bit-identical.
    assert bf16["clean_msssim_x_recx_mean"] == fp32["clean_msssim_x_recx_mean"]
    assert bf16["clean_l2_x_recx_mean"] == fp32["clean_l2_x_recx_mean"]
    # The attacks optimise through bf16 networks: other optima, the same robustness within a few %.
    changed = 0
    for lv in ("l1", "l3", "l5"):
        for key in ("latent_msssim_xt_recxa", "max_damage_msssim_recx_recxa", "latent_l2_x_xa"):
            a, b = fp32[f"{key}_{lv}_mean"], bf16[f"{key}_{lv}_mean"]
            changed += a != b
            assert b == pytest.approx(a, rel=0.1, abs=0.02), (key, lv)
    assert changed  # bf16 really ran
    assert bf16["fid_classifier_mean"] == pytest.approx(fp32["fid_classifier_mean"], rel=0.1)
