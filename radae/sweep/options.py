"""Every option of a sweep run in one dataclass: its flag, help, default and check.

:class:`SweepOptions` is the one place a sweep option and its default are written down. The sweep
command line (:mod:`radae.sweep.cli`) is generated from its fields, as :mod:`radae.cli` generates
the training command line from :class:`radae.config.RunConfig`; the options table of
docs/sweeps.md is :func:`options_table` (a test keeps the two in step). A field's metadata holds
its ``help``, its ``group``, and where the flag differs from ``--field-name`` the ``flag``;
``env`` names the environment variable a default comes from, ``choices`` the allowed values,
``shown`` how a ``None`` default reads in the help, ``cli: False`` marks a field set by programs
only. Values are checked when the object is built (:class:`SettingsError` naming the flag),
before any service is contacted::

    opts = SweepOptions(tracking_uri="http://127.0.0.1:5000", num_samples=8)
    opts = opts.resolve("alpha-modes")   # storage from $RADAE_S3_*, a sweep id, an absolute study path

The sweep definition (``sweeps/*.yaml``) holds what is trained; these options say how and where,
and the few that override the definition (``--seeds``, ``--gpus-per-trial``, ``--pack-size``,
``--pack-noise``, ``--objective``, ``--num-samples``) default to ``None``: the definition's value.
"""

from __future__ import annotations

import dataclasses
import os
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radae.cli import set_overrides
from radae.objective import OBJECTIVES
from radae.store.settings import SettingsError, StorageSettings
from radae.store.studies import DEFAULT_STUDY_DB
from radae.store.tracking import DEFAULT_EXPERIMENT
from radae.sweep.definition import SweepDefinition
from radae.sweep.packing import NOISE_MODES, TrialResources

GROUPS = ("sweep", "trials", "services")
GPU_CHOICES = {"auto": None, "yes": True, "no": False}


def option(
    default: Any,
    help_text: str,
    group: str,
    *,
    flag: str | None = None,
    env: str | None = None,
    choices: tuple[str, ...] | None = None,
    shown: str | None = None,
    cli: bool = True,
) -> Any:
    """A :class:`SweepOptions` field (``env``: the default is that variable when set)."""
    metadata = {
        "help": help_text,
        "group": group,
        "flag": flag,
        "env": env,
        "choices": choices,
        "shown": shown,
        "cli": cli,
        "fallback": default,
    }
    if env:
        return field(default_factory=lambda: os.environ.get(env) or default, metadata=metadata)
    if isinstance(default, tuple | list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class SweepOptions:
    """How and where a sweep runs (the trained configurations live in its definition)."""

    # sweep: what runs
    smoke_test: bool = option(False, "tiny version of the sweep (the definition's smoke section)", "sweep")
    definition: str | None = option(None, "sweep definition YAML", "sweep", shown="the script's")
    sweep_id: str | None = option(
        None,
        "sweep id; required with --resume",
        "sweep",
        shown="NAME-YYYYmmdd-HHMMSS (the definition's name, UTC time)",
    )
    resume: bool = option(False, "restore an interrupted sweep (Tuner.restore) with its Optuna state", "sweep")
    num_samples: int | None = option(None, "configurations to train", "sweep", shown="the definition's")
    seeds: int | None = option(
        None, "training seeds per configuration", "sweep", shown=f"the definition's seeds, else {SweepDefinition.seeds}"
    )
    objective: str | None = option(
        None,
        "objective mode, overriding the definition's (pareto drops its ASHA scheduler)",
        "sweep",
        choices=tuple(OBJECTIVES.names()),
        shown="the definition's",
    )
    overrides: tuple[str, ...] = option(
        (), "override a base config field by dotted key (repeatable)", "sweep", flag="--set", shown="none"
    )
    data_dir: str | None = option(
        None, "dataset folder (sets data.data_dir, made absolute)", "sweep", shown="$RADAE_DATA_DIR"
    )
    sampler_seed: int = option(0, "seed of the Optuna sampler (TPE, GridSampler)", "sweep")
    # trials: resources, packing, retries
    concurrency: int | None = option(
        None, "trials running at once", "trials", shown="cluster GPUs / gpus_per_trial on a GPU cluster, else 1"
    )
    gpus_per_trial: float | None = option(
        None,
        "GPU share of one trial, 0 < x <= 1 (0.25: four trials per GPU, each capped at 1/4 of its memory)",
        "trials",
        shown=f"the definition's, else {TrialResources.gpus_per_trial:g}",
    )
    pack_size: int | None = option(
        None,
        "configurations trained together in one trial with train_packed (1 = no packing)",
        "trials",
        shown=f"the definition's, else {TrialResources.pack_size}",
    )
    pack_noise: str | None = option(
        None,
        "noise streams of a pack: member (each equals training alone) or shared (faster)",
        "trials",
        choices=NOISE_MODES,
        shown=f"the definition's, else {TrialResources.pack_noise}",
    )
    executor: str = option("torch", "torch (Ray Train TorchTrainer per trial) or direct (in the Tune trial)", "trials")
    num_workers: int = option(1, "Ray Train workers per trial (torch executor)", "trials", flag="--workers")
    gpu: str = option(
        "auto", "a GPU per trial worker (auto: if the cluster has GPUs)", "trials", choices=tuple(GPU_CHOICES)
    )
    max_failures: int = option(2, "retries of a failed trial (each resumes from its last checkpoint)", "trials")
    # services: where things run and are stored
    ray_address: str | None = option(
        None, "Ray cluster address", "services", env="RAY_ADDRESS", shown="$RAY_ADDRESS, else a local Ray"
    )
    local_cpus: int = option(2, "CPUs of the local Ray started when no Ray address is given", "services")
    tracking_uri: str | None = option(
        None,
        "MLflow tracking URI",
        "services",
        flag="--mlflow-uri",
        env="MLFLOW_TRACKING_URI",
        shown="$MLFLOW_TRACKING_URI",
    )
    experiment: str = option(DEFAULT_EXPERIMENT, "MLflow experiment", "services")
    endpoint: str | None = option(None, "S3 endpoint URL", "services", shown="$RADAE_S3_ENDPOINT")
    bucket: str | None = option(None, "S3 bucket", "services", shown="$RADAE_S3_BUCKET")
    prefix: str | None = option(
        None, "key prefix in the bucket", "services", shown=f"$RADAE_S3_PREFIX, else {StorageSettings.prefix}"
    )
    study_db: str = option(
        DEFAULT_STUDY_DB,
        "Optuna SQLite file (absolute path: jobs run in a temporary working dir)",
        "services",
        env="RADAE_OPTUNA_DB",
    )
    work_dir: str = option(
        "~/.radae/trials", "local folder of the trials' training outputs", "services", env="RADAE_WORK_DIR"
    )
    state_dir: str | None = option(
        None,
        "folder for pid/progress files (operators, fault tests)",
        "services",
        env="RADAE_SWEEP_STATE_DIR",
        shown="$RADAE_SWEEP_STATE_DIR, else none",
    )
    storage: StorageSettings | None = option(
        None,
        "the bucket's settings (programs; else from --endpoint/--bucket/--prefix and $RADAE_S3_*)",
        "services",
        cli=False,
    )

    def __post_init__(self) -> None:
        if self.overrides is not None and not isinstance(self.overrides, tuple):
            object.__setattr__(self, "overrides", tuple(self.overrides))
        for name, low in (
            ("num_samples", 1),
            ("concurrency", 1),
            ("num_workers", 1),
            ("max_failures", 0),
            ("local_cpus", 1),
        ):
            value = getattr(self, name)
            if value is not None and value < low:
                raise SettingsError(f"{flag_of(name)} must be >= {low}, got {value}")
        for f in dataclasses.fields(self):
            choices, value = f.metadata.get("choices"), getattr(self, f.name)
            if choices and value is not None and value not in choices:
                raise SettingsError(f"{flag_of(f.name)} must be one of {', '.join(choices)}, got {value!r}")
        if self.resume and not self.sweep_id:
            raise SettingsError("--resume needs --sweep-id (the id printed when the sweep started)")
        if not self.tracking_uri:
            raise SettingsError("no MLflow tracking URI: pass --mlflow-uri or set MLFLOW_TRACKING_URI")
        self.config_overrides()  # KEY=VALUE items, named when malformed

    def config_overrides(self) -> dict[str, str]:
        """Dotted base-config overrides: the ``--set`` items, plus ``data.data_dir`` from ``--data-dir``."""
        return set_overrides(self.overrides, self.data_dir)

    @property
    def use_gpu(self) -> bool | None:
        """A GPU per trial worker: True, False, or None (decided by the cluster's GPUs)."""
        return GPU_CHOICES[self.gpu]

    def definition_overrides(self) -> dict[str, Any]:
        """Trial resources given on the command line (None: the definition's), for ``with_resources``."""
        return {"gpus_per_trial": self.gpus_per_trial, "pack_size": self.pack_size, "pack_noise": self.pack_noise}

    def resolve(self, name: str) -> SweepOptions:
        """These options with what they leave open filled in: the storage settings (from
        ``--endpoint``/``--bucket``/``--prefix`` and ``$RADAE_S3_*``), a sweep id
        ``<name>-<UTC time>``, and ``study_db`` as an absolute path. Idempotent."""
        storage = self.storage or StorageSettings.from_env(
            endpoint=self.endpoint, bucket=self.bucket, prefix=self.prefix
        )
        sweep_id = self.sweep_id or f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        study_db = str(Path(self.study_db).expanduser().resolve())
        return dataclasses.replace(self, storage=storage, sweep_id=sweep_id, study_db=study_db)


def option_fields() -> list[dataclasses.Field]:
    """The fields of :class:`SweepOptions` that are command-line options, in order."""
    return [f for f in dataclasses.fields(SweepOptions) if f.metadata.get("cli", True)]


def option_types() -> dict[str, Any]:
    """Field name -> resolved type hint."""
    return typing.get_type_hints(SweepOptions)


def flag_of(name: str) -> str:
    """The command-line flag of a field (``num_samples`` -> ``--num-samples``, ``tracking_uri`` -> ``--mlflow-uri``)."""
    f = next(f for f in dataclasses.fields(SweepOptions) if f.name == name)
    return f.metadata.get("flag") or "--" + name.replace("_", "-")


def default_of(name: str) -> Any:
    """The default of one field (for scripts that take some of these options without the rest)."""
    f = next(f for f in dataclasses.fields(SweepOptions) if f.name == name)
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]


def shown_default(f: dataclasses.Field) -> str:
    """How a field's default reads in help and in the options table."""
    if f.metadata.get("shown"):
        return str(f.metadata["shown"])
    if f.metadata.get("env"):  # the variable when set (read when the options are built), else the fallback
        return f"${f.metadata['env']}, else {f.metadata['fallback']}"
    return str(f.metadata["fallback"])
