"""Sweep definitions (``sweeps/*.yaml``): base overrides, search space, objective, scheduler.

A definition never holds defaults of its own: ``base`` is a set of dotted overrides applied to
``RunConfig()`` and ``space`` names dotted keys (style rule 2). ``smoke`` replaces ``base`` keys,
the ``space`` and ``num_samples`` for ``--smoke-test``::

    name: alpha-modes
    objective: {mode: scalar}   # optional fid_weight: w of the scalar score (objective.FID_WEIGHT)
    base: {data.name: mnist, train.epochs: 20}
    space:
      loss.alpha: {type: grid, values: [0.1, 0.5, 0.9, 0.95, 1.0]}
    scheduler: {type: asha, metric: val_rec_mse, mode: min, grace_period: 2}   # optional, scalar only
    smoke: {base: {train.epochs: 1}, space: {...}, num_samples: 2}
    gpus_per_trial: 0.25      # optional: Ray GPU share and CUDA memory cap per trial (radae.sweep.packing)
    pack_size: 4              # optional: configurations trained together per trial (train_packed)
    seeds: 2                  # optional (also in smoke): training seeds per configuration (radae.sweep.seeds)

:func:`load_definition` validates everything (unknown keys, impossible ranges, scheduler on a
two-objective sweep) before any trial starts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radae.config import ConfigError, RunConfig, apply_overrides
from radae.names import check_names
from radae.objective import FID_WEIGHT, OBJECTIVES, Objective, make_objective
from radae.sweep.packing import RESOURCE_KEYS, ResourceError, TrialResources, validate_packing
from radae.sweep.seeds import SEED_FIELD, check_seeds
from radae.sweep.space import SearchSpace, SpaceError

TOP_KEYS = {
    "name",
    "description",
    "objective",
    "base",
    "space",
    "num_samples",
    "scheduler",
    "smoke",
    "seeds",
    *RESOURCE_KEYS,
}
SMOKE_KEYS = {"base", "space", "num_samples", "scheduler", "seeds", *RESOURCE_KEYS}
log = logging.getLogger(__name__)

SCHEDULER_KEYS = {"type", "metric", "mode", "grace_period", "reduction_factor"}
# Per-epoch metrics that are the eq. 10 weighted sum: not comparable across trials that search a loss.* key.
WEIGHTED_LOSS_METRICS = ("val_loss", "train_loss")
LOSS_SECTION = "loss."


class DefinitionError(ValueError):
    """An invalid sweep definition; the message names the file and the field."""


def base_config(base: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> RunConfig:
    """``RunConfig()`` with a sweep's dotted ``base`` overrides, then ``extra`` (the CLI's --set).

    The one way a sweep's base config is built: the driver (:meth:`SweepDefinition.base_config`)
    and the trials (from the ``base`` mapping they are handed) call it.
    """
    return apply_overrides(RunConfig(), {**base, **(extra or {})})


@dataclass(frozen=True)
class SweepDefinition:
    name: str
    objective: Objective
    base: dict[str, Any]
    space: SearchSpace
    num_samples: int
    scheduler: dict[str, Any] | None = None
    description: str = ""
    source: str = field(default="", compare=False)
    # Trials per GPU: fractional GPU and packing (radae.sweep.packing); num_samples counts configurations.
    resources: TrialResources = field(default_factory=TrialResources)
    # Training seeds per configuration (radae.sweep.seeds): num_samples configurations x seeds Tune trials.
    seeds: int = 1

    def base_config(self, extra: Mapping[str, Any] | None = None) -> RunConfig:
        """``RunConfig()`` with the definition's base overrides, then ``extra`` (the CLI's --set)."""
        return base_config(self.base, extra)

    def describe(self) -> dict[str, Any]:
        """Flat description for the parent MLflow run."""
        out = {
            "sweep.name": self.name,
            "sweep.objective": self.objective.name,
            "sweep.fid_weight": self.objective.fid_weight,
            "sweep.num_samples": self.num_samples,
            "sweep.seeds": self.seeds,
            "sweep.scheduler": (self.scheduler or {}).get("type", "none"),
        }
        out.update(self.resources.describe())
        out.update({f"base.{k}": v for k, v in self.base.items()})
        out.update({f"space.{k}": repr(v) for k, v in self.space.params.items()})
        return out


def check_command_line(base: Mapping[str, Any], extra: Mapping[str, Any] | None, fail: Any) -> None:
    """When the definition's ``base`` builds a config but the command line's overrides (``extra``:
    ``--set``, ``--data-dir``) break it, raise :class:`DefinitionError` naming the override, not the file."""
    if not extra:
        return
    try:
        base_config(base)
    except (ConfigError, ValueError) as exc:
        raise fail(str(exc)) from None
    try:
        base_config(base, extra)
    except (ConfigError, ValueError) as exc:
        named = [k for k in extra if k in str(exc)] or list(extra)
        flag = "--data-dir" if named == ["data.data_dir"] else "--set"
        given = " ".join(f"{k}={extra[k]}" for k in named)
        raise DefinitionError(f"{flag} {given}: {exc}") from None


def load_definition(
    path: str | Path, *, smoke: bool = False, extra: Mapping[str, Any] | None = None
) -> SweepDefinition:
    """Read, merge (``smoke``) and validate a definition file."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DefinitionError(f"{path}: cannot read sweep definition: {exc}") from None
    return parse_definition(raw, smoke=smoke, extra=extra, source=str(path))


def parse_definition(
    raw: Any, *, smoke: bool = False, extra: Mapping[str, Any] | None = None, source: str = "<dict>"
) -> SweepDefinition:
    def fail(msg: str) -> DefinitionError:
        return DefinitionError(f"{source}: {msg}")

    if not isinstance(raw, Mapping):
        raise fail("a sweep definition must be a mapping")
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise fail(f"unknown fields {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    base = dict(raw.get("base") or {})
    space_spec = dict(raw.get("space") or {})
    num_samples = raw.get("num_samples")
    scheduler = raw.get("scheduler")
    seeds = raw.get("seeds", 1)
    if smoke:
        sm = raw.get("smoke")
        if not isinstance(sm, Mapping):
            raise fail("--smoke-test needs a 'smoke' section")
        if set(sm) - SMOKE_KEYS:
            raise fail(f"unknown smoke fields {sorted(set(sm) - SMOKE_KEYS)}; allowed: {sorted(SMOKE_KEYS)}")
        base.update(sm.get("base") or {})
        space_spec = dict(sm.get("space") or space_spec)
        num_samples = sm.get("num_samples", num_samples)
        scheduler = sm.get("scheduler", scheduler)
        seeds = sm.get("seeds", seeds)
        resource_raw = {**{k: raw.get(k) for k in RESOURCE_KEYS}, **{k: sm[k] for k in RESOURCE_KEYS if k in sm}}
    else:
        resource_raw = {k: raw.get(k) for k in RESOURCE_KEYS}
    check_command_line(base, extra, fail)
    obj = raw.get("objective") or {}
    if obj.get("mode") not in OBJECTIVES:
        raise fail(f"objective.mode must be one of {OBJECTIVES.names()}, got {obj.get('mode')!r}")
    try:
        objective = make_objective(obj["mode"], float(obj.get("fid_weight", FID_WEIGHT)))
        space = SearchSpace.from_dict(space_spec)
        base_cfg = base_config(base, extra)
        check_names(base_cfg)
        space.validate(base_cfg)
        resources = TrialResources.from_mapping(resource_raw)
        validate_packing(space, base_cfg, resources)
        check_space_seeds(space, check_seeds(seeds, "seeds"))
    except (SpaceError, ConfigError, ResourceError, ValueError) as exc:
        raise fail(str(exc)) from None
    if not space.params:
        raise fail("the search space is empty")
    if num_samples is None:
        if not space.is_grid:
            raise fail("num_samples is required unless every parameter is a grid")
        num_samples = space.grid_size()
    if not isinstance(num_samples, int) or num_samples < 1:
        raise fail(f"num_samples must be an integer >= 1, got {num_samples!r}")
    if space.is_grid and num_samples > space.grid_size():
        raise fail(f"num_samples {num_samples} exceeds the grid's {space.grid_size()} points")
    if scheduler is not None:
        if not isinstance(scheduler, Mapping) or scheduler.get("type") != "asha":
            raise fail("scheduler must be {type: asha, metric: ..., mode: min|max}")
        if set(scheduler) - SCHEDULER_KEYS:
            raise fail(f"unknown scheduler fields {sorted(set(scheduler) - SCHEDULER_KEYS)}")
        if objective.name != "scalar":
            raise fail("ASHA early stopping needs the scalar objective (one metric)")
        if scheduler.get("mode") not in ("min", "max") or not scheduler.get("metric"):
            raise fail("scheduler needs metric (a per-epoch metric) and mode (min or max)")
        weighted = sorted(k for k in space.params if k.startswith(LOSS_SECTION))
        if scheduler["metric"] in WEIGHTED_LOSS_METRICS and weighted:
            raise fail(
                f"scheduler.metric {scheduler['metric']} is the weighted eq. 10 loss, whose scale changes with the "
                f"searched {', '.join(weighted)}: ASHA would stop trials for their loss weights, not for worse "
                "models; rank on a metric that does not depend on them, e.g. val_rec_mse"
            )
        scheduler = dict(scheduler)
    return SweepDefinition(
        name=str(raw.get("name") or Path(source).stem),
        objective=objective,
        base=base,
        space=space,
        num_samples=num_samples,
        scheduler=scheduler,
        description=str(raw.get("description") or ""),
        source=source,
        resources=resources,
        seeds=seeds,
    )


def with_resources(
    defn: SweepDefinition, extra: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> SweepDefinition:
    """``defn`` with the CLI's resource settings (``gpus_per_trial``, ``pack_size``) applied and validated."""
    from dataclasses import asdict, replace

    given = {k: v for k, v in extra.items() if v is not None}
    if not given:
        return defn
    try:
        resources = TrialResources(**{**asdict(defn.resources), **given})
        validate_packing(defn.space, defn.base_config(overrides), resources)
    except ResourceError as exc:
        raise DefinitionError(f"{defn.source}: {exc}") from None
    return replace(defn, resources=resources)


def with_objective(defn: SweepDefinition, name: str | None) -> SweepDefinition:
    """``defn`` with the CLI's ``--objective`` (None: the definition's); a two-objective search
    drops the definition's ASHA scheduler (ASHA needs one scalar metric)."""
    from dataclasses import replace

    if name is None or name == defn.objective.name:
        return defn
    scheduler = defn.scheduler
    if scheduler and name != "scalar":
        log.warning("--objective %s runs without the definition's ASHA scheduler", name)
        scheduler = None
    return replace(defn, objective=make_objective(name, defn.objective.fid_weight), scheduler=scheduler)


def check_space_seeds(space: SearchSpace, seeds: int) -> None:
    """ValueError when ``seeds > 1`` and the space also searches the training seed."""
    if seeds > 1 and SEED_FIELD in space.params:
        raise ValueError(
            f"seeds: {seeds} repeats every configuration over {SEED_FIELD}; do not also search {SEED_FIELD}"
        )


def with_seeds(defn: SweepDefinition, seeds: int | None) -> SweepDefinition:
    """``defn`` with the CLI's ``--seeds`` (None: the definition's), validated."""
    from dataclasses import replace

    if seeds is None:
        return defn
    try:
        check_space_seeds(defn.space, check_seeds(seeds, "--seeds"))
    except ValueError as exc:
        raise DefinitionError(f"{defn.source}: {exc}") from None
    return replace(defn, seeds=seeds)
