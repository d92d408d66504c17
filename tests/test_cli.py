"""The CLI generated from the config dataclasses: every field settable, bad values exit 2 naming it."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from radae.cli import ALIASES, build_parser, parse_config
from radae.config import RunConfig, field_types, known_keys, section_types
from radae.train import main

# A valid non-default value for the string fields whose values are restricted or meaningful.
STRING_VALUES = {
    "data.name": "mnist",
    "data.resize": "pad",
    "model.name": "vae",
    "model.arch": "conv",
    "prior.placement": "spread",
    "adv.method": "pgd",
    "train.device": "cpu",
    "train.step_mode": "eager",
    "train.precision": "bf16",
    "eval.precision": "bf16",
    "baseline.likelihood": "gaussian",
    "baseline.se_perturbation": "random",
    "loss.ks_weighting": "separate",
    "eval.attack_impl": "lbfgsb-authors",
}


def hint_of(key: str) -> typing.Any:
    section, name = key.split(".")
    return field_types(section_types()[section])[name]


def other_value(key: str, current: typing.Any) -> tuple[str, typing.Any]:
    """(command-line text, expected parsed value) differing from ``current`` and valid for ``key``."""
    hint = hint_of(key)
    inner = [a for a in typing.get_args(hint) if a is not type(None)]
    base = inner[0] if inner and typing.get_origin(hint) is not tuple else hint
    if key in STRING_VALUES:
        return STRING_VALUES[key], STRING_VALUES[key]
    if base is bool:
        return str(not current).lower(), not current
    if base is int:
        value = 7 if current is None else current + 1
        return str(value), value
    if base is float:
        value = 0.5 if not current else current * 0.5  # None or 0.0 (off): any positive value
        return repr(value), value
    if typing.get_origin(hint) is tuple:
        return "2,4", (2.0, 4.0)
    text = f"/tmp/radae-cli-{key}"  # free-form strings: paths
    return text, text


@pytest.mark.parametrize("key", known_keys())
def test_every_config_field_is_settable(key: str) -> None:
    current = RunConfig().flat()[key]
    text, expected = other_value(key, current)
    assert expected != current
    cfg, _ = parse_config(build_parser("radae", None), [f"--{key}", text])
    assert cfg.flat()[key] == expected


def test_aliases_and_config_file(tmp_path: Path) -> None:
    argv = [
        "--model",
        "rae",
        "--dataset",
        "mnist",
        "--epochs",
        "3",
        "--data-dir",
        "/d",
        "--out-dir",
        "/o",
        "--device",
        "cpu",
    ]
    cfg, args = parse_config(build_parser("radae", None), [*argv, "--seed", "4", "--resume"])
    assert (cfg.model.name, cfg.data.name, cfg.train.epochs, cfg.data.data_dir) == ("rae", "mnist", 3, "/d")
    assert (cfg.train.out_dir, cfg.train.device, cfg.train.seed, args.resume) == ("/o", "cpu", 4, True)
    assert set(ALIASES) <= set(known_keys())
    # A saved config.json is a starting point; options on the command line override it.
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps(cfg.to_dict()))
    again, _ = parse_config(build_parser("radae", None), ["--config", str(saved), "--loss.alpha", "0.5"])
    assert again.train.seed == 4 and again.loss.alpha == 0.5 and again.data.name == "mnist"


def test_dataset_defaults_follow_the_dataset() -> None:
    cfg, _ = parse_config(build_parser("radae", None), ["--dataset", "svhn"])
    assert (cfg.model.arch, cfg.model.latent_dim, cfg.loss.alpha) == ("conv", 100, 0.92)


@pytest.mark.parametrize(
    "argv,named",
    [
        (["--loss.alpha", "1.5"], "loss.alpha must be in [0, 1]"),
        (["--train.epochs", "abc"], "train.epochs expects int"),
        (["--prior.num_modes", "0"], "prior.num_modes must be >= 1"),
        (["--adv.eps", "-0.1"], "adv.eps must be >= 0"),
        (["--dataset", "cifar"], "data.name must be one of"),
        (["--prior.placement", "onehot", "--prior.num_modes", "12"], "prior.num_modes"),
        (["--loss.adv_rec", "maybe"], "loss.adv_rec expects bool"),
        # registry names (radae.names), refused on the command line before any run starts
        (["--adv.method", "pgdd"], "adv.method 'pgdd' is unknown; known: fgsm, none, pgd"),
        (
            ["--prior.placement", "bogus"],
            "prior.placement 'bogus' is unknown; known: auto, onehot, roll, sobol-doubling, spread",
        ),
        (["--loss.ks_weighting", "both"], "loss.ks_weighting 'both' is unknown; known: eq6, separate"),
        (["--eval.attack_impl", "lbfgs"], "eval.attack_impl 'lbfgs' is unknown; known: batched, lbfgsb-authors"),
        (["--data.resize", "nearest"], "data.resize 'nearest' is unknown; known: bilinear, pad"),
    ],
)
def test_bad_values_exit_2_naming_the_field(argv: list[str], named: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_config(build_parser("radae", None), argv)
    assert exc.value.code == 2
    assert named in capsys.readouterr().err


def test_bad_config_file_exits_2_naming_the_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "cfg.json"
    bad.write_text('{"loss": {"alfa": 0.9}}')
    with pytest.raises(SystemExit) as exc:
        parse_config(build_parser("radae", None), ["--config", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "loss.alfa" in err


def test_unknown_model_exits_2_before_any_output(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--model", "nope", "--out-dir", str(tmp_path / "run")])
    assert exc.value.code == 2
    assert "model.name 'nope' is unknown; known: " in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_help_lists_examples_and_every_field() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "radae.train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "python -m radae.train --dataset mnist --epochs 5" in out
    for key in known_keys():
        assert f"--{key}" in out, key


def test_docs_config_table_matches_the_dataclasses() -> None:
    from radae.cli import config_table

    docs = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    assert config_table() in docs, "docs/training.md is stale: regenerate its table with python -m radae.cli"
