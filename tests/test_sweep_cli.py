"""The sweep scripts reject bad input before any trial starts, with a message naming it."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cluster.stack import free_port
from radae.data.idx import write_idx
from radae.store.settings import SettingsError
from radae.sweep.cli import build_parser, main, options_table, parse_options, pin_data_dir
from radae.sweep.definition import load_definition
from radae.sweep.options import SweepOptions, flag_of, option_fields

ROOT = Path(__file__).parents[1]
DEFINITION = ROOT / "sweeps" / "alpha_modes.yaml"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "loss.alfa=0.5"], "loss.alfa"),
        (["--set", "loss.alpha=1.5"], "loss.alpha"),
        (["--set", "prior.placement=onehot"], "prior.num_modes=25"),  # the grid's K = 25 > D = 10
        (["--resume"], "--resume needs --sweep-id"),
        (["--executor", "threads"], "unknown executor"),
        (["--concurrency", "0"], "--concurrency"),
        (["--mlflow-uri", ""], "MLflow tracking URI"),
        (["--sweep-id", "my sweep"], "sweep id 'my sweep'"),  # part of every object key
        (["--set", "adv.method=pgdd"], "adv.method 'pgdd' is unknown; known: fgsm, none, pgd"),
        (["--set", "loss.alpha"], "--set expects KEY=VALUE"),
        (["--num-samples", "many"], "--num-samples expects int, got 'many'"),
        (["--max-failures", "-1"], "--max-failures must be >= 0"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--gpus-per-trial", "1.5"], "gpus_per_trial"),
        (["--seeds", "0"], "--seeds must be an integer >= 1"),
    ],
)
def test_bad_arguments_exit_2_naming_the_field(dead_services, capsys, argv, message):
    assert main(DEFINITION, ["--smoke-test", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_misspelled_set_key_names_the_set_argument(dead_services, capsys):
    assert main(DEFINITION, ["--smoke-test", "--set", "loss.alfa=0.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --set loss.alfa=0.5: unknown config key 'loss.alfa'")
    assert "alpha_modes.yaml" not in err  # the definition file is not to blame


def test_bad_definition_file(tmp_path, dead_services, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "objective: {mode: scalar}\nnum_samples: 2\nspace:\n  loss.ks_mult: {type: loguniform, low: 0, high: 10}\n"
    )
    assert main(bad, []) == 2
    assert "loss.ks_mult" in capsys.readouterr().err


def test_definition_with_an_unknown_model_name_is_refused_before_any_trial(tmp_path, dead_services, capsys):
    bad = tmp_path / "names.yaml"
    bad.write_text(
        "objective: {mode: scalar}\nbase: {data.name: mnist}\nspace:\n  model.name: {type: grid, values: [rae, vea]}\n"
    )
    assert main(bad, []) == 2
    err = capsys.readouterr().err
    assert "model.name 'vea' is unknown; known: " in err and "rae" in err


@pytest.mark.parametrize("how", ["--data-dir", "--set"])
def test_a_named_data_dir_without_the_data_stops_the_sweep_before_any_work(tmp_path, dead_services, capsys, how):
    missing = tmp_path / "no-such-folder"
    argv = ["--data-dir", str(missing)] if how == "--data-dir" else ["--set", f"data.data_dir={missing}"]
    t0 = time.time()
    assert main(DEFINITION, ["--smoke-test", *argv]) == 2
    err = capsys.readouterr().err
    assert f"--data-dir (data.data_dir) {missing}: no such folder" in err
    assert "S3 endpoint" not in err and time.time() - t0 < 10  # refused before any service is contacted


def test_the_folder_the_search_finds_is_pinned_for_every_trial(tmp_path, monkeypatch):
    for name, shape in [("train-images-idx3-ubyte", (12, 28, 28)), ("t10k-images-idx3-ubyte", (4, 28, 28))]:
        write_idx(tmp_path / name, np.zeros(shape, dtype=np.uint8))
        write_idx(tmp_path / name.replace("images-idx3", "labels-idx1"), np.zeros(shape[0], dtype=np.uint8))
    monkeypatch.setenv("RADAE_DATA_DIR", str(tmp_path))
    defn = load_definition(DEFINITION, smoke=True)
    opts = pin_data_dir(SweepOptions(tracking_uri="sqlite:///x.db"), defn, {})
    assert opts.data_dir == str(tmp_path)
    assert defn.base_config(opts.config_overrides()).data.data_dir == str(tmp_path)  # in every row's config


def test_unreachable_services_are_named_before_any_trial(dead_services, capsys):
    t0 = time.time()
    code = main(DEFINITION, ["--smoke-test", "--ray-address", f"127.0.0.1:{free_port()}"])
    err = capsys.readouterr().err
    assert code == 2 and time.time() - t0 < 30
    assert "S3 endpoint" in err and "MLflow server" in err and "Ray cluster at" in err


def test_script_help_runs_as_a_program():
    out = subprocess.run(
        [sys.executable, str(ROOT / "sweeps" / "search.py"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "--smoke-test" in out.stdout and "--resume" in out.stdout


@pytest.mark.parametrize(("argv", "message"), [(["--sweep-id", "a/b"], "sweep id 'a/b'"), (["--s3"], "S3 endpoint")])
def test_baselines_script_checks_id_and_storage_before_training(dead_services, argv, message):
    """sweeps/baselines.py (sequential): a bad id or an unreachable bucket is named before any model trains."""
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, str(ROOT / "sweeps" / "baselines.py"), "--smoke-test", "--s3", *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]
    assert "epoch" not in out.stdout and time.time() - t0 < 60


# Every flag the docs, README, cluster scripts and tests use: generated from SweepOptions, they must stay.
FLAGS = [
    "--smoke-test",
    "--definition",
    "--sweep-id",
    "--resume",
    "--num-samples",
    "--seeds",
    "--concurrency",
    "--gpus-per-trial",
    "--pack-size",
    "--pack-noise",
    "--executor",
    "--workers",
    "--gpu",
    "--max-failures",
    "--objective",
    "--ray-address",
    "--mlflow-uri",
    "--experiment",
    "--endpoint",
    "--bucket",
    "--prefix",
    "--study-db",
    "--work-dir",
    "--state-dir",
    "--data-dir",
    "--set",
]


def test_the_cli_is_generated_from_the_options_dataclass(monkeypatch):
    parser = build_parser("sweep", None)
    generated = {a for action in parser._actions for a in action.option_strings} - {"-h", "--help"}
    assert generated == {flag_of(f.name) for f in option_fields()} and set(FLAGS) <= generated
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    monkeypatch.delenv("RADAE_OPTUNA_DB", raising=False)
    # Nothing given: every value is the dataclass's default (the environment's where it names one).
    assert parse_options(parser, []) == SweepOptions() and SweepOptions().tracking_uri == "http://127.0.0.1:1"
    assert SweepOptions().study_db == "~/.radae/optuna.db" and SweepOptions().max_failures == 2
    monkeypatch.setenv("RADAE_OPTUNA_DB", "/tmp/other.db")
    opts = parse_options(
        parser,
        [
            "--smoke-test",
            "--resume",
            "--sweep-id",
            "s-1",
            "--workers",
            "2",
            "--gpu",
            "no",
            "--gpus-per-trial",
            "0.5",
            "--set",
            "loss.alpha=0.5",
            "--set=train.epochs=1",
            "--mlflow-uri",
            "http://127.0.0.1:2",
        ],
    )
    assert opts.smoke_test and opts.resume and opts.sweep_id == "s-1" and opts.num_workers == 2
    assert opts.use_gpu is False and opts.gpus_per_trial == 0.5 and opts.study_db == "/tmp/other.db"
    assert (
        opts.config_overrides() == {"loss.alpha": "0.5", "train.epochs": "1"}
        and opts.tracking_uri == "http://127.0.0.1:2"
    )
    assert opts.definition_overrides() == {"gpus_per_trial": 0.5, "pack_size": None, "pack_noise": None}


def test_options_are_checked_when_built():
    with pytest.raises(SettingsError, match="--concurrency must be >= 1, got 0"):
        SweepOptions(tracking_uri="x", concurrency=0)
    with pytest.raises(SettingsError, match="--pack-noise must be one of member, shared, got 'all'"):
        SweepOptions(tracking_uri="x", pack_noise="all")
    with pytest.raises(SettingsError, match="--resume needs --sweep-id"):
        SweepOptions(tracking_uri="x", resume=True)


def test_docs_options_table_matches_the_dataclass():
    docs = (ROOT / "docs" / "sweeps.md").read_text()
    assert options_table() in docs, (
        "docs/sweeps.md is stale: regenerate its options table with python -m radae.sweep.cli"
    )


def test_baselines_script_hands_every_sweep_option_to_the_ray_cli(dead_services):
    """sweeps/baselines.py --ray: the options it shares with the sweep CLI (--sweep-id, --set ...) reach it."""
    script = [sys.executable, str(ROOT / "sweeps" / "baselines.py"), "--ray", "--smoke-test"]
    out = subprocess.run([*script, "--sweep-id", "a b"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "sweep id 'a b'" in out.stderr, out.stderr[-2000:]
    out = subprocess.run(
        [*script, "--set", "loss.alfa=1", "--models", "rae"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 2 and "loss.alfa" in out.stderr, out.stderr[-2000:]
