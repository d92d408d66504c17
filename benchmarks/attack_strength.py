"""The attack strength gate on real checkpoints: batched attack settings against per-image L-BFGS-B.

    python benchmarks/attack_strength.py CKPT [CKPT ...] --images 20 --threads 1
    python benchmarks/attack_strength.py CKPT --reference-starts 3 --variants default one-start plain

For each checkpoint, attack and lambda, on held-out test images (``radae.evaluate.pick_images`` with
``--seed``, not the evaluation's seed 0), it prints

- ``strength``: mean batched objective over mean L-BFGS-B objective from the same first starts
  (SciPy's default tolerances, the authors' history size: :mod:`radae.attacks.strength`), inverted
  for the latent attack so that > 1 always means the batched attack is the stronger;
- ``vs best of k``: the same against the best of ``--reference-starts`` L-BFGS-B starts per row;
- ``cost``: the variant's process CPU time over the ``plain`` variant's (one start, plain steps),
  measured in this process.

Variants (``--variants``): ``default`` (the evaluation's settings), ``one-start`` (the default
steps, a single start), ``plain`` (a single start, no steps along the sphere: the attack before the
strength gate), and for comparing settings ``four-starts``, ``tangent`` and ``four-tangent``. A gate passes
where ``default``'s strength and its strength against the best of the L-BFGS-B starts are both >= 1 - 1% at
every lambda.
"""

from __future__ import annotations

import argparse
import time

import torch

from radae.attacks import ATTACKS, Attack, lbfgsb_one, random_start, strength
from radae.attacks.strength import reference_settings
from radae.checkpoint import load_model
from radae.data import load_dataset
from radae.evaluate import frozen, pick_images

VARIANTS = {
    "default": {},
    "one-start": {"restarts": 1},
    "plain": {"restarts": 1, "tangent_steps": False},
    "four-starts": {"restarts": 4},
    "tangent": {"tangent_steps": True},
    "four-tangent": {"restarts": 4, "tangent_steps": True},
}


def build(name: str, variant: str) -> Attack:
    """Attack ``name`` with ``variant``'s settings (``tangent_steps`` overrides the class's choice)."""
    settings = dict(VARIANTS[variant])
    tangent = settings.pop("tangent_steps", None)
    attack = ATTACKS.create(name, **settings)
    if tangent is not None:
        attack.tangent_steps = tangent
    return attack


def reference(attack, model, x, xt, levels, seed, starts_k):
    """(k, R) L-BFGS-B objectives per row from k starts; the first are the batched attack's first starts."""
    n = len(x)
    image_index = torch.arange(n).repeat(len(levels))
    level = torch.tensor(levels, dtype=x.dtype).repeat_interleave(n)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        const = attack.prepare(model, x, xt)
    settings = reference_settings(attack.name)
    values = []
    for _ in range(starts_k):
        starts = random_start(x[image_index], level, gen)
        values.append(
            [
                lbfgsb_one(attack, model, x[i], const[i], float(r), s, settings)[1]
                for i, r, s in zip(image_index.tolist(), level.tolist(), starts, strict=True)
            ]
        )
    return torch.tensor(values, dtype=torch.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="+")
    parser.add_argument("--images", type=int, default=20, help="held-out test images per checkpoint")
    parser.add_argument("--levels", type=float, nargs="+", default=[1.0, 3.0, 5.0])
    parser.add_argument("--seed", type=int, default=1234, help="image choice and starts (held out: not eval.seed 0)")
    parser.add_argument("--reference-starts", type=int, default=3, help="L-BFGS-B starts per row")
    parser.add_argument("--variants", nargs="+", default=["default", "one-start", "plain"], choices=list(VARIANTS))
    parser.add_argument("--attacks", nargs="+", default=["latent", "max_damage"], choices=["latent", "max_damage"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    failed = []
    for ckpt in args.checkpoint:
        cfg, model = load_model(ckpt, device="cpu")
        data = load_dataset(cfg.data)
        idx, tidx = pick_images(data.test.labels, args.images, args.seed, by_class=data.info.class_targets)
        x, xt = data.test.get(idx), data.test.get(tidx)
        with frozen(model):
            for name in args.attacks:
                sign = ATTACKS.get(name).sign
                t0 = time.process_time()
                ref = reference(build(name, "default"), model, x, xt, args.levels, args.seed, args.reference_starts)
                print(f"{ckpt} {name}: L-BFGS-B {args.reference_starts} starts, {time.process_time() - t0:.1f} s CPU")
                best = (sign * ref).min(dim=0).values * sign
                costs = {}
                for variant in ["plain"] + [v for v in args.variants if v != "plain"]:
                    attack = build(name, variant)
                    t0 = time.process_time()
                    res = attack.run(
                        model, x, args.levels, 1, targets=xt, generator=torch.Generator().manual_seed(args.seed)
                    )
                    costs[variant] = time.process_time() - t0
                    if variant not in args.variants:
                        continue
                    cells = []
                    for li, level in enumerate(args.levels):
                        rows = res.level_index == li
                        ours = float(res.loss[rows].double().mean())
                        one, best_k = float(ref[0][rows].mean()), float(best[rows].mean())
                        vs_same, vs_best = strength(ours, one, sign), strength(ours, best_k, sign)
                        cells.append(
                            f"l{level:g} strength {vs_same:.4f} vs best of {args.reference_starts} {vs_best:.4f}"
                        )
                        if variant == "default" and min(vs_same, vs_best) < 0.99:
                            failed.append(f"{ckpt} {name} lambda {level:g}: {vs_same:.4f}, vs best {vs_best:.4f}")
                    ratio = costs[variant] / costs["plain"]
                    print(f"  {variant:10s} cost {ratio:4.2f}x  " + " | ".join(cells), flush=True)
    print(
        "gate: "
        + (
            "FAILED " + "; ".join(failed)
            if failed
            else "passed (default strength >= 0.99 everywhere, also against the best start)"
        )
    )


if __name__ == "__main__":
    main()
