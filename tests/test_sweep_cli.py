"""The sweep scripts reject bad input before any trial starts, with a message naming it."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster.stack import free_port
from radae.sweep.cli import main

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
    ],
)
def test_bad_arguments_exit_2_naming_the_field(dead_services, capsys, argv, message):
    assert main(DEFINITION, ["--smoke-test", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bad_definition_file(tmp_path, dead_services, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("objective: {mode: scalar}\nnum_samples: 2\nspace:\n  loss.ks_mult: {type: loguniform, low: 0, high: 10}\n")
    assert main(bad, []) == 2
    assert "loss.ks_mult" in capsys.readouterr().err


def test_definition_with_an_unknown_model_name_is_refused_before_any_trial(tmp_path, dead_services, capsys):
    bad = tmp_path / "names.yaml"
    bad.write_text("objective: {mode: scalar}\nbase: {data.name: mnist}\nspace:\n  model.name: {type: grid, values: [rae, vea]}\n")
    assert main(bad, []) == 2
    err = capsys.readouterr().err
    assert "model.name 'vea' is unknown; known: " in err and "rae" in err


def test_unreachable_services_are_named_before_any_trial(dead_services, capsys):
    t0 = time.time()
    code = main(DEFINITION, ["--smoke-test", "--ray-address", f"127.0.0.1:{free_port()}"])
    err = capsys.readouterr().err
    assert code == 2 and time.time() - t0 < 30
    assert "S3 endpoint" in err and "MLflow server" in err and "Ray cluster at" in err


def test_script_help_runs_as_a_program():
    out = subprocess.run([sys.executable, str(ROOT / "sweeps" / "search.py"), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--smoke-test" in out.stdout and "--resume" in out.stdout


@pytest.mark.parametrize(("argv", "message"), [(["--sweep-id", "a/b"], "sweep id 'a/b'"), (["--s3"], "S3 endpoint")])
def test_baselines_script_checks_id_and_storage_before_training(dead_services, argv, message):
    """sweeps/baselines.py (sequential): a bad id or an unreachable bucket is named before any model trains."""
    t0 = time.time()
    out = subprocess.run([sys.executable, str(ROOT / "sweeps" / "baselines.py"), "--smoke-test", "--s3", *argv],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]
    assert "epoch" not in out.stdout and time.time() - t0 < 60
