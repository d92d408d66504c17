"""Paired per-image comparison of two evaluation attacks on one checkpoint (issue 10, docs/robustness-gap.md).

    python benchmarks/attack_gap.py CKPT --images 25 --threads 1
    python benchmarks/attack_gap.py CKPT --impl-b lbfgsb-authors --noise-b 0.4 0.004

Both attacks see the same test images (``radae.evaluate.pick_images``), the same targets and the
same random start per row (one start per image, the authors' protocol), so the per-image
differences B - A of the objective and of the standard MS-SSIM are paired; the script prints their
mean with a 95% interval (mean +- 1.96 std / sqrt(n), std ddof 1) per attack and lambda. Decode
noise (``--noise-b LATENT MAX_DAMAGE``) applies to attack B only, as ``eval.decode_noise_*`` does.
"""

from __future__ import annotations

import argparse
import math

import torch

from radae.attacks import ATTACK_IMPLS, NoisyDecoding
from radae.checkpoint import load_model
from radae.data import load_dataset
from radae.evaluate import frozen, pick_images
from radae.metrics import ms_ssim


def per_row(model, attack, x, xt, levels, seed, noise):
    """Objective and MS-SSIM (max damage: recon x vs recon x_a; latent: x_t vs recon x_a) per row."""
    gen = torch.Generator().manual_seed(seed)
    if noise > 0:
        model = NoisyDecoding(model, noise, torch.Generator().manual_seed(seed + 1))
    res = attack.run(model, x, levels, 1, targets=xt, generator=gen)
    with torch.no_grad():
        recxa = model.reconstruct(res.x_adv)
        ref = xt[res.image_index] if attack.name == "latent" else model.reconstruct(x)[res.image_index]
    return res, res.loss.double(), ms_ssim(ref, recxa).double()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--images", type=int, default=25)
    parser.add_argument("--levels", type=float, nargs="+", default=[1.0, 3.0, 5.0])
    parser.add_argument("--impl-a", default="batched")
    parser.add_argument("--impl-b", default="lbfgsb-authors")
    parser.add_argument("--noise-b", type=float, nargs=2, default=[0.0, 0.0], metavar=("LATENT", "MAX_DAMAGE"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, model = load_model(args.checkpoint, device="cpu")
    data = load_dataset(cfg.data)
    idx, tidx = pick_images(data.test.labels, args.images, args.seed, by_class=data.info.class_targets)
    x, xt = data.test.get(idx), data.test.get(tidx)
    noise_b = dict(zip(("latent", "max_damage"), args.noise_b, strict=True))
    print(
        f"{args.checkpoint}: B={args.impl_b} (noise {args.noise_b}) minus A={args.impl_a}, n={args.images} paired images"
    )
    with frozen(model):
        for name in ("latent", "max_damage"):
            a = ATTACK_IMPLS.create(args.impl_a, name=name)
            b = ATTACK_IMPLS.create(args.impl_b, name=name)
            ra, obj_a, ms_a = per_row(model, a, x, xt, args.levels, args.seed + 1, 0.0)
            _, obj_b, ms_b = per_row(model, b, x, xt, args.levels, args.seed + 1, noise_b[name])
            for li, level in enumerate(args.levels):
                sel = ra.level_index == li
                for label, va, vb in (("objective", obj_a, obj_b), ("msssim", ms_a, ms_b)):
                    d = (vb - va)[sel]
                    half = 1.96 * float(d.std()) / math.sqrt(len(d))
                    print(
                        f"{name:10s} lambda={level:g} {label:9s} A {float(va[sel].mean()):8.3f}  "
                        f"B {float(vb[sel].mean()):8.3f}  B-A {float(d.mean()):+8.3f} +- {half:.3f}"
                    )


if __name__ == "__main__":
    main()
