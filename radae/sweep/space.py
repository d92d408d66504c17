"""Search spaces over dotted RunConfig keys, validated before any trial starts.

A space maps dotted config keys to parameter specs::

    space = SearchSpace.from_dict({
        "loss.alpha": {"type": "uniform", "low": 0.1, "high": 1.0},
        "prior.num_modes": {"type": "choice", "values": [1, 5, 10, 15, 20, 25]},
        "loss.ks_mult": {"type": "loguniform", "low": 0.1, "high": 10.0},
    })
    space.validate(base)                     # unknown keys, impossible ranges -> SpaceError
    cfg = space.to_config(base, {"loss.alpha": 0.9, "prior.num_modes": 25})

Spec types live in a registry (``uniform``, ``loguniform``, ``int``, ``choice``, ``grid``) and map
onto Optuna distributions, which the searcher asks Optuna with directly. ``grid`` is a ``choice`` that the
sweep enumerates exhaustively (Optuna's GridSampler) instead of sampling. A sampled point becomes
a config only through :func:`radae.config.apply_overrides`, so a key that does not exist is an
error, never a silently ignored setting.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from radae.config import ConfigError, RunConfig, apply_overrides, known_keys
from radae.names import check_names
from radae.registry import Registry


class SpaceError(ValueError):
    """A search space that cannot be searched; the message names the key."""


SPECS: Registry = Registry("search-space type")


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter: its key and the values it may take."""

    key: str

    def distribution(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def extremes(self) -> list[Any]:
        """Values that bound the range (checked against the config before the sweep)."""
        raise NotImplementedError


@SPECS.register("uniform")
@dataclass(frozen=True)
class Uniform(ParamSpec):
    low: float = 0.0
    high: float = 1.0
    log: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise SpaceError(f"{self.key}: bounds must be finite numbers, got [{self.low}, {self.high}]")
        if self.low > self.high:
            raise SpaceError(f"{self.key}: impossible range, low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise SpaceError(f"{self.key}: log-uniform bounds must be > 0, got low {self.low}")

    def distribution(self):
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log)

    def extremes(self) -> list[Any]:
        return [self.low, self.high]


@SPECS.register("loguniform")
@dataclass(frozen=True)
class LogUniform(Uniform):
    log: bool = True


@SPECS.register("int")
@dataclass(frozen=True)
class IntRange(ParamSpec):
    low: int = 0
    high: int = 1
    log: bool = False

    def __post_init__(self) -> None:
        if int(self.low) != self.low or int(self.high) != self.high:
            raise SpaceError(f"{self.key}: int bounds must be integers, got [{self.low}, {self.high}]")
        if self.low > self.high:
            raise SpaceError(f"{self.key}: impossible range, low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise SpaceError(f"{self.key}: log int bounds must be > 0, got low {self.low}")

    def distribution(self):
        from optuna.distributions import IntDistribution

        return IntDistribution(int(self.low), int(self.high), log=self.log)

    def extremes(self) -> list[Any]:
        return [int(self.low), int(self.high)]


@SPECS.register("choice")
@dataclass(frozen=True)
class Choice(ParamSpec):
    values: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        if not self.values:
            raise SpaceError(f"{self.key}: a choice needs at least one value")
        if len(set(map(repr, self.values))) != len(self.values):
            raise SpaceError(f"{self.key}: repeated choice values {list(self.values)}")

    def distribution(self):
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.values)

    def extremes(self) -> list[Any]:
        return list(self.values)


@SPECS.register("grid")
@dataclass(frozen=True)
class Grid(Choice):
    """A choice enumerated exhaustively (every value appears in the grid's cross product)."""


@dataclass(frozen=True)
class SearchSpace:
    """Dotted config key -> :class:`ParamSpec`."""

    params: Mapping[str, ParamSpec]

    @classmethod
    def from_dict(cls, spec: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
        """Build from ``{key: {"type": ..., **fields}}`` (a sweep definition's ``space``)."""
        keys = set(known_keys())
        params: dict[str, ParamSpec] = {}
        for key, entry in spec.items():
            if key not in keys:
                raise SpaceError(
                    f"unknown search-space key {key!r}: not a RunConfig field (e.g. loss.alpha, prior.num_modes)"
                )
            if not isinstance(entry, Mapping) or "type" not in entry:
                raise SpaceError(f"{key}: spec must be a mapping with a 'type' ({', '.join(SPECS.names())})")
            fields = {k: v for k, v in entry.items() if k != "type"}
            try:
                kind = SPECS.get(entry["type"])
            except KeyError as exc:
                raise SpaceError(f"{key}: {exc.args[0]}") from None
            try:
                params[key] = kind(key=key, **fields)
            except TypeError as exc:
                raise SpaceError(f"{key}: bad fields for type {entry['type']!r}: {exc}") from None
        return cls(params)

    def validate(self, base: RunConfig) -> None:
        """Raise :class:`SpaceError` unless every extreme of every parameter gives a valid config.

        Each bound (every value of a choice or grid) is applied alone to ``base`` through
        ``apply_overrides`` and its registry names checked (:func:`radae.names.check_names`):
        ``loss.alpha`` up to 1.5 or ``model.name: [rae, vea]`` fails here, before any trial, with
        the config's own message.
        """
        for key, spec in self.params.items():
            for value in spec.extremes():
                try:
                    check_names(apply_overrides(base, {key: value}))
                except ConfigError as exc:
                    raise SpaceError(f"search space {key}={value!r} gives an invalid config: {exc}") from None

    def optuna_space(self) -> dict[str, Any]:
        """``{key: optuna distribution}`` (the searcher's ``study.ask(fixed_distributions=...)``)."""
        return {key: spec.distribution() for key, spec in self.params.items()}

    @property
    def is_grid(self) -> bool:
        return bool(self.params) and all(isinstance(s, Grid) for s in self.params.values())

    def grid(self) -> dict[str, list[Any]]:
        """``{key: values}`` of a pure grid (Optuna GridSampler's search space)."""
        if not self.is_grid:
            raise SpaceError("only a space whose every parameter is a grid can be enumerated")
        return {k: list(s.values) for k, s in self.params.items()}  # type: ignore[attr-defined]

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values())

    def grid_points(self) -> list[dict[str, Any]]:
        grid = self.grid()
        return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]

    def to_config(self, base: RunConfig, params: Mapping[str, Any]) -> RunConfig:
        """The trial's RunConfig: ``base`` with the sampled ``params`` applied by dotted key.

        Keys outside this space are rejected (a sampler must not invent parameters).
        """
        extra = sorted(set(params) - set(self.params))
        if extra:
            raise SpaceError(f"parameters {extra} are not in the search space ({', '.join(self.params)})")
        return apply_overrides(base, dict(params))
