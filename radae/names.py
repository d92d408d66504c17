"""Config fields that name a registered object, checked against their registries in one place.

    check_names(cfg)   # ConfigError: "model.name 'vea' is unknown; known: avae, beta-tcvae, ..., rae, se, vae"

:class:`radae.config.RunConfig` checks values alone (ranges, types) and imports no torch; the names
it holds (``model.name``, ``adv.method``, ``prior.placement`` ...) are only known once the modules
that register them are imported, and those modules import :mod:`radae.config`. So every
registry-backed value is checked here, a layer above both, and nowhere else (no copy of a
registry's names anywhere), wherever a config or a sweep definition is validated, before any
data, file or trial:

- :func:`radae.cli.parse_config`: every ``python -m radae.*`` command line (exit status 2);
- :func:`radae.trainer.validate`: :func:`radae.trainer.train` and ``train_packed``, for configs
  built in code; :func:`radae.fast.packed.check_packable` for every member of a pack;
- :func:`radae.evaluate.check_request` (the ``eval`` section, :func:`check_section`);
- the sweep definition's parsing (``radae.sweep.definition``): its base config, and
  ``radae.sweep.space.SearchSpace.validate`` checks every candidate value of a ``choice``/``grid``
  and both bounds of a range, before Ray starts.

A new registry-backed field is one more row of :data:`NAMED_FIELDS`.
"""

from __future__ import annotations

from radae.attacks import ATTACK_IMPLS
from radae.config import ConfigError, RunConfig
from radae.data import DATASETS
from radae.data.resize import RESIZERS
from radae.losses import KS_WEIGHTINGS
from radae.models import MODELS, NETWORKS
from radae.models.baselines import LIKELIHOODS
from radae.perturb import PERTURBATIONS
from radae.precision import PRECISIONS
from radae.prior import PLACEMENTS
from radae.registry import Registry
from radae.trainsteps import STEP_MODES

# dotted key -> (registry of its values, values accepted besides the registered ones)
NAMED_FIELDS: dict[str, tuple[Registry, tuple[str, ...]]] = {
    "data.name": (DATASETS, ()),
    "data.resize": (RESIZERS, ()),
    "model.name": (MODELS, ()),
    "model.arch": (NETWORKS, ()),
    "prior.placement": (PLACEMENTS, ()),
    "loss.ks_weighting": (KS_WEIGHTINGS, ()),
    "adv.method": (PERTURBATIONS, ()),
    "train.step_mode": (STEP_MODES, ("auto",)),
    "train.precision": (PRECISIONS, ()),
    "eval.precision": (PRECISIONS, ()),
    "eval.attack_impl": (ATTACK_IMPLS, ()),
    "baseline.likelihood": (LIKELIHOODS, ()),
}


def known_names(key: str) -> list[str]:
    """The values ``key`` accepts: its registry's names and the extra ones (``auto``)."""
    registry, extra = NAMED_FIELDS[key]
    return [*registry.names(), *extra]


def check_names(cfg: RunConfig) -> RunConfig:
    """Raise :class:`ConfigError` naming the first field whose value no registry knows, and the known names.

    Returns ``cfg``, so a caller can write ``cfg = check_names(apply_overrides(...))``.
    """
    for section in dict.fromkeys(key.partition(".")[0] for key in NAMED_FIELDS):
        check_section(section, getattr(cfg, section))
    return cfg


def check_section(section: str, values: object) -> None:
    """:func:`check_names` for one section's dataclass (``check_section("eval", cfg.eval)``)."""
    for key in NAMED_FIELDS:
        owner, _, name = key.partition(".")
        if owner == section and (value := getattr(values, name)) not in (known := known_names(key)):
            raise ConfigError(f"{key} {value!r} is unknown; known: {', '.join(known)}")
