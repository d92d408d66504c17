"""Command-line options generated from the config dataclasses, shared by every radae entry point.

Every field of a section becomes ``--section.field`` with its help text and default; a few
common ones get short aliases (``--model``, ``--dataset``, ``--epochs`` ...). ``--config FILE.json``
starts from a saved config (a run's ``config.json``); options given on the command line override
it. Values are converted and checked by :func:`radae.config.apply_overrides`, and a bad value
exits with status 2 and a message naming the field::

    parser = build_parser(prog="python -m radae.train", description=__doc__)
    cfg, args = parse_config(parser, argv)

:func:`add_section_arguments` adds one section's fields to any parser (``radae.evaluate`` uses it
for ``eval``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radae.config import PAPER_DEFAULTS, ConfigError, RunConfig, apply_overrides, field_types, section_types
from radae.names import check_names

# Short options for the fields set most often.
ALIASES: dict[str, str] = {
    "model.name": "--model",
    "data.name": "--dataset",
    "train.epochs": "--epochs",
    "data.data_dir": "--data-dir",
    "train.out_dir": "--out-dir",
    "train.device": "--device",
    "train.seed": "--seed",
}


def type_name(hint: Any) -> str:
    """How an option's type reads in help and tables: ``INT``, ``FLOAT,...``, ``STR`` (Optional unwrapped)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return f"{type_name(args[0])},..."
    if args:
        return type_name(args[0])
    return getattr(hint, "__name__", str(hint)).upper()


def add_field_argument(
    group: Any, names: Sequence[str], dest: str, hint: Any, help_text: str, shown: Any, **extra: Any
) -> None:
    """One dataclass field as an option of ``group`` (a parser or argument group).

    The value stays a string (:func:`radae.config.coerce` converts it against ``hint``) and is absent
    from the namespace unless given, so the dataclass's own default applies; a bool field's flag alone
    means true. ``shown`` is the default the help names; ``extra`` goes to ``add_argument``.
    """
    if hint is bool:
        extra = {"nargs": "?", "const": "true", **extra}
    if "choices" not in extra:
        extra.setdefault("metavar", type_name(hint))
    group.add_argument(
        *names, dest=dest, default=argparse.SUPPRESS, help=f"{help_text} (default: {shown})".replace("%", "%%"), **extra
    )


def add_section_arguments(parser: argparse.ArgumentParser, section: str, cls: type | None = None) -> None:
    """Add ``--section.field`` for every field of the section's dataclass (values stay strings)."""
    cls = cls or section_types()[section]
    group = parser.add_argument_group(f"{section} options")
    hints = field_types(cls)
    for f in dataclasses.fields(cls):
        key = f"{section}.{f.name}"
        names = [f"--{key}"] + ([ALIASES[key]] if key in ALIASES else [])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        shown = "dataset's" if default is None and section in ("model", "prior", "loss") else default
        add_field_argument(group, names, key, hints[f.name], f.metadata.get("help", ""), shown)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line plus a pointer to ``--help``: the full usage of
    every config option (about 70 lines) would bury the error."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\nRun '{self.prog} --help' for the options.\n")


def build_parser(prog: str, description: str | None, sections: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """A parser with ``--config``, ``--resume`` and the fields of ``sections`` (default: all)."""
    parser = Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="FILE.json", help="start from a saved config (e.g. a run's config.json)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run whose checkpoint is in the output folder"
    )
    for section in sections or list(section_types()):
        add_section_arguments(parser, section)
    return parser


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``{"section.field": value}`` options actually given on the command line."""
    return {k: v for k, v in vars(args).items() if "." in k}


def load_config_file(path: str) -> RunConfig:
    """A :class:`RunConfig` from a JSON file of nested sections; errors name the file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"--config {path}: cannot read a JSON config ({err})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a JSON object of config sections")
    try:
        return RunConfig.from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"--config {path}: {err}") from err


def parse_config(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None, base: RunConfig | None = None
) -> tuple[RunConfig, argparse.Namespace]:
    """Parse ``argv`` into (config, namespace); invalid values and unknown registry names
    (:func:`radae.names.check_names`) exit 2 naming the field."""
    args = parser.parse_args(argv)
    try:
        cfg = load_config_file(args.config) if getattr(args, "config", None) else (base or RunConfig())
        cfg = check_names(apply_overrides(cfg, overrides_from_args(args)))
    except ConfigError as err:
        parser.error(str(err))
    return cfg, args


def set_overrides(items: Sequence[str], data_dir: str | None = None) -> dict[str, str]:
    """Dotted overrides from ``--set KEY=VALUE`` items (scripts' option), plus ``data.data_dir``
    as an absolute path when ``data_dir`` is given (jobs run in a temporary working dir)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    if data_dir:
        out["data.data_dir"] = str(Path(data_dir).expanduser().resolve())
    return out


def config_table() -> str:
    """Markdown table of every config field (option, type, default, help): docs/training.md holds it."""
    lines = ["| option | type | default | meaning |", "|---|---|---|---|"]
    unresolved = {key for defaults in PAPER_DEFAULTS.values() for key in defaults}
    for section, cls in section_types().items():
        hints = field_types(cls)
        for f in dataclasses.fields(cls):
            key = f"{section}.{f.name}"
            alias = f" (`{ALIASES[key]}`)" if key in ALIASES else ""
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            shown = "dataset's" if key in unresolved else default
            lines.append(
                f"| `--{key}`{alias} | {type_name(hints[f.name]).lower()} | {shown} | {f.metadata.get('help', '')} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(config_table())
