"""Evaluation attacks by name: ``ATTACKS.create("latent", steps=100)``.

- ``latent``: targeted latent-space attack, minimise ||E(x + d) - E(x_t)||^2 (latent.py).
- ``max_damage``: maximise ||G(E(x + d)) - G(E(x))||_2 (max_damage.py).

Both: ||d||_2 <= lambda, x + d in [0, 1], random starts, batched over lambdas x trials x images.

How an attack is optimised (``eval.attack_impl``, registry ``ATTACK_IMPLS``):

- ``batched``: projected gradient descent on all rows at once (base.py), the default.
- ``lbfgsb-authors``: per-image SciPy L-BFGS-B with the authors' released settings (lbfgsb.py).

Either is built by ``ATTACK_IMPLS.create(impl, name=..., steps=..., step_frac=..., batch_size=...,
restarts=..., maxfun=...)`` and has the same ``run`` signature and :class:`AttackResult`.
"""

from radae.attacks.base import Attack, AttackResult, project_l2_box, random_start
from radae.attacks.decode_noise import NoisyDecoding
from radae.attacks.latent import LatentAttack
from radae.attacks.lbfgsb import AUTHORS_SETTINGS, LBFGSBAttack, LBFGSBSettings, lbfgsb_one
from radae.attacks.max_damage import MaxDamageAttack
from radae.attacks.strength import strength, strength_vs_lbfgsb
from radae.registry import Registry

ATTACKS: Registry[type[Attack]] = Registry("attack")
ATTACKS.register(LatentAttack.name)(LatentAttack)
ATTACKS.register(MaxDamageAttack.name)(MaxDamageAttack)

ATTACK_IMPLS: Registry = Registry("attack implementation")


@ATTACK_IMPLS.register("batched")
def batched_attack(
    name: str,
    steps: int = 100,
    step_frac: float | None = None,
    batch_size: int | None = None,
    restarts: int | None = None,
    **_: object,
) -> Attack:
    """The batched projected-gradient attack ``name``."""
    return ATTACKS.create(name, steps=steps, step_frac=step_frac, batch_size=batch_size, restarts=restarts)


@ATTACK_IMPLS.register("lbfgsb-authors")
def lbfgsb_authors_attack(name: str, maxfun: int = 15000, **_: object) -> LBFGSBAttack:
    """Attack ``name``'s objective, per image, with L-BFGS-B at the authors' settings (``AUTHORS_SETTINGS``)."""
    base = AUTHORS_SETTINGS[name]
    settings = LBFGSBSettings(maxcor=base.maxcor, factr=base.factr, pgtol=base.pgtol, maxfun=maxfun)
    return LBFGSBAttack(ATTACKS.create(name), settings)


__all__ = [
    "ATTACKS",
    "ATTACK_IMPLS",
    "AUTHORS_SETTINGS",
    "Attack",
    "AttackResult",
    "LBFGSBAttack",
    "LBFGSBSettings",
    "LatentAttack",
    "MaxDamageAttack",
    "NoisyDecoding",
    "lbfgsb_one",
    "project_l2_box",
    "random_start",
    "strength",
    "strength_vs_lbfgsb",
]
