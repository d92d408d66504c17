"""Config fields that name a registered object, checked against their registries in one place.

    check_names(cfg)   # ConfigError: "model.name 'vea' is unknown; known: avae, beta-tcvae, ..., rae, se, vae"

:class:`radae.config.RunConfig` checks values alone (ranges, types) and imports no torch; the names
it holds (``model.name``, ``adv.method`` ...) are only known once the modules that register them are
imported, and those modules import :mod:`radae.config`. So the names are checked here, a layer above
both: by :func:`radae.trainer.validate` before a run touches data or files, and by the sweep's
definition parsing (``radae.sweep.space.SearchSpace.validate`` checks every candidate value of a
``choice``/``grid`` and both bounds of a range) before any trial starts.

A new registry-backed field is one more row of :data:`NAMED_FIELDS`.
"""

from __future__ import annotations

from radae.config import ConfigError, RunConfig
from radae.data import DATASETS
from radae.data.resize import RESIZERS
from radae.models import MODELS, NETWORKS
from radae.models.baselines import LIKELIHOODS
from radae.perturb import PERTURBATIONS
from radae.prior import PLACEMENTS
from radae.registry import Registry
from radae.trainsteps import STEP_MODES

# dotted key -> (registry of its values, values accepted besides the registered ones)
NAMED_FIELDS: dict[str, tuple[Registry, tuple[str, ...]]] = {
    "data.name": (DATASETS, ()),
    "data.resize": (RESIZERS, ()),
    "model.name": (MODELS, ()),
    "model.arch": (NETWORKS, ()),
    "prior.placement": (PLACEMENTS, ("auto",)),
    "adv.method": (PERTURBATIONS, ()),
    "train.step_mode": (STEP_MODES, ("auto",)),
    "baseline.likelihood": (LIKELIHOODS, ()),
}


def known_names(key: str) -> list[str]:
    """The values ``key`` accepts: its registry's names and the extra ones (``auto``)."""
    registry, extra = NAMED_FIELDS[key]
    return [*registry.names(), *extra]


def check_names(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` naming the first field whose value no registry knows, and the known names."""
    flat = cfg.flat()
    for key in NAMED_FIELDS:
        known = known_names(key)
        if flat[key] not in known:
            raise ConfigError(f"{key} {flat[key]!r} is unknown; known: {', '.join(known)}")
