"""Evaluation attacks by name: ``ATTACKS.create("latent", steps=100)``.

- ``latent``: targeted latent-space attack, minimise ||E(x + d) - E(x_t)||^2 (latent.py).
- ``max_damage``: maximise ||G(E(x + d)) - G(E(x))||_2 (max_damage.py).

Both: ||d||_2 <= lambda, x + d in [0, 1], random starts, batched over lambdas x trials x images.
"""

from radae.attacks.base import Attack, AttackResult, project_l2_box, random_start
from radae.attacks.latent import LatentAttack
from radae.attacks.max_damage import MaxDamageAttack
from radae.registry import Registry

ATTACKS: Registry[type[Attack]] = Registry("attack")
ATTACKS.register(LatentAttack.name)(LatentAttack)
ATTACKS.register(MaxDamageAttack.name)(MaxDamageAttack)

__all__ = ["ATTACKS", "Attack", "AttackResult", "LatentAttack", "MaxDamageAttack", "project_l2_box", "random_start"]
