"""Command line shared by the sweep scripts in ``sweeps/`` (each passes its definition file).

    python sweeps/alpha_modes.py --smoke-test                     # local Ray, services from env
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python sweeps/search.py \\
        --num-samples 64 --concurrency 4 --mlflow-uri http://127.0.0.1:5000
    python sweeps/search.py --sweep-id search-20261125-1200 --resume

Storage comes from ``RADAE_S3_ENDPOINT``/``RADAE_S3_BUCKET``/``RADAE_S3_PREFIX`` and the AWS
credential variables (``cluster/start_stack.sh`` writes them to ``.stack/env``), overridable by
``--endpoint``/``--bucket``/``--prefix``. ``--set key=value`` changes the base config by dotted key.
Exit status: 0 done (trials completed or pruned), 2 bad input (named), 1 some trials failed for good.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radae.cli import Parser, add_field_argument, type_name
from radae.config import ConfigError, coerce
from radae.data import DataError
from radae.store import results
from radae.store.preflight import PreflightError, data_folder
from radae.store.settings import SettingsError, scrub
from radae.sweep.definition import DefinitionError, load_definition, with_objective, with_resources, with_seeds
from radae.sweep.options import GROUPS, SweepOptions, flag_of, option_fields, option_types, shown_default
from radae.sweep.space import SpaceError
from radae.sweep.trainable import EXECUTORS


def build_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A parser with one option per :class:`SweepOptions` field (values stay strings, absent unless given)."""
    p = Parser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(p)
    return p


def add_options(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    """Add the options of the :class:`SweepOptions` fields ``names`` (default: all), grouped as documented."""
    groups: dict[str, Any] = {}
    hints = option_types()
    for f in option_fields():
        if names is not None and f.name not in names:
            continue
        group = f.metadata["group"]
        if group not in groups:
            groups[group] = parser.add_argument_group(f"{group} options")
        extra: dict = {}
        if f.metadata.get("choices"):
            extra["choices"] = f.metadata["choices"]
        if typing_is_tuple(hints[f.name]):
            extra.update(action="append", metavar="KEY=VALUE")
        add_field_argument(
            groups[group], [flag_of(f.name)], f.name, hints[f.name], f.metadata["help"], shown_default(f), **extra
        )


def typing_is_tuple(hint: object) -> bool:
    """A repeatable option (``--set``): its values are collected, not converted."""
    return typing.get_origin(hint) is tuple


def option_values(args: argparse.Namespace) -> dict[str, object]:
    """The :class:`SweepOptions` fields given on the command line, converted (ConfigError naming the flag)."""
    hints = option_types()
    values: dict[str, object] = {}
    for name, value in vars(args).items():
        if name in hints:
            hint = hints[name]
            values[name] = tuple(value) if typing_is_tuple(hint) else coerce(flag_of(name), value, hint)
    return values


def parse_options(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> SweepOptions:
    """:class:`SweepOptions` from the command line; a bad value raises ConfigError/SettingsError naming the flag."""
    return SweepOptions(**option_values(parser.parse_args(argv)))


def options_table() -> str:
    """Markdown table of every sweep option (flag, type, default, meaning): docs/sweeps.md holds it."""
    hints = option_types()
    lines = ["| option | type | default | meaning |", "|---|---|---|---|"]
    for group in GROUPS:
        for f in (f for f in option_fields() if f.metadata["group"] == group):
            kind = (
                "{" + ",".join(f.metadata["choices"]) + "}"
                if f.metadata.get("choices")
                else type_name(hints[f.name]).lower()
            )
            kind = "key=value" if typing_is_tuple(hints[f.name]) else kind
            lines.append(f"| `{flag_of(f.name)}` | {kind} | {shown_default(f)} | {f.metadata['help']} |")
    return "\n".join(lines)


def pin_data_dir(opts: SweepOptions, defn: Any, overrides: dict[str, str]) -> SweepOptions:
    """``opts`` with ``data_dir`` set to the folder every trial reads (:func:`radae.store.preflight.data_folder`):
    a folder the user named is checked (DataError before any work), one the search finds is pinned."""
    searched = defn.space.params.get("data.name")
    folder = data_folder(defn.base_config(overrides), getattr(searched, "values", ()))
    if folder is None or "data.data_dir" in overrides:
        return opts
    print(f"dataset: {folder} (found by the search order; --data-dir names another)", flush=True)
    return dataclasses.replace(opts, data_dir=folder)


def main(default_definition: str | Path, argv: Sequence[str] | None = None, doc: str | None = None) -> int:
    """Parse, validate (before any trial), run; returns the exit status."""
    parser = build_parser(Path(sys.argv[0]).name, doc)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        opts = parse_options(parser, argv)
        overrides = opts.config_overrides()
        defn = load_definition(opts.definition or default_definition, smoke=opts.smoke_test, extra=overrides)
        defn = with_resources(defn, opts.definition_overrides(), overrides)
        defn = with_seeds(defn, opts.seeds)
        defn = with_objective(defn, opts.objective)
        opts = pin_data_dir(opts, defn, overrides)
        opts = opts.resolve(defn.name)
        results.sweep_dir(opts.storage, opts.sweep_id)  # the id is part of every object key: checked before any trial

        EXECUTORS.get(opts.executor)
    except (DefinitionError, SpaceError, ConfigError, SettingsError, KeyError, results.ResultsError, DataError) as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return 2
    storage, sweep_id = opts.storage, opts.sweep_id
    res = defn.resources
    packing = f", packs of {res.pack_size}" if res.packed else ""
    seeded = f" x {defn.seeds} seeds" if defn.seeds > 1 else ""
    print(
        f"sweep {sweep_id}: {opts.num_samples or defn.num_samples} configurations{seeded} of {defn.name} "
        f"({defn.objective.name} objective{packing}, {res.gpus_per_trial:g} GPU per trial where GPUs exist), storage {storage}, "
        f"MLflow {opts.tracking_uri}, python {sys.executable}",
        flush=True,
    )
    # lazy: radae.sweep.runner imports ray; --help and bad input are answered without it
    from radae.sweep.runner import SweepError, run_sweep

    try:
        table = run_sweep(defn, opts)
    except (PreflightError, SweepError, results.ResultsError) as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return 2
    statuses = table.column("status").to_pylist() if table.num_rows else []
    print(
        f"sweep {sweep_id} done: {table.num_rows} rows in {storage.uri('results', f'sweep={sweep_id}')} "
        f"({', '.join(f'{s}: {statuses.count(s)}' for s in sorted(set(statuses)))})",
        flush=True,
    )
    return 1 if "error" in statuses else 0


if __name__ == "__main__":
    print(options_table())
