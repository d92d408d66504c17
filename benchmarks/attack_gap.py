"""Paired per-image comparison of two evaluation attacks on one checkpoint (docs/robustness-gap.md).

    python benchmarks/attack_gap.py CKPT --images 25 --threads 1
    python benchmarks/attack_gap.py CKPT [CKPT ...] --impl-b lbfgsb-authors --noise-b 0.4 0.004 --csv rows.csv
    python benchmarks/attack_gap.py --from-csv a.csv b.csv     # pool earlier runs' rows

Both attacks see the same test images (``radae.evaluate.pick_images``), the same targets and the
same random start per row (one start per image, the authors' protocol), so the per-image
differences B - A of the objective, of the standard MS-SSIM and of the paper's MS-SSIM formula
(``msssim_paper``, the one the paper's tables use) are paired; the script prints their mean with a
95% interval (mean +- 1.96 std / sqrt(n), std ddof 1) per attack and lambda, pooled over the images
of every checkpoint given (e.g. the seeds of one configuration). Decode noise (``--noise-b LATENT
MAX_DAMAGE``) applies to attack B only, as ``eval.decode_noise_*`` does. ``--csv`` keeps the per-row
values.
"""

from __future__ import annotations

import argparse
import csv
import math

import torch

from radae.attacks import ATTACK_IMPLS, NoisyDecoding
from radae.checkpoint import load_model
from radae.data import load_dataset
from radae.evaluate import frozen, pick_images
from radae.metrics import ms_ssim, ms_ssim_paper

METRICS = ("objective", "msssim", "msssim_paper")


def per_row(model, attack, x, xt, levels, seed, noise):
    """Objective, standard and paper-formula MS-SSIM (max damage: recon x vs recon x_a; latent: x_t vs
    recon x_a) per row."""
    gen = torch.Generator().manual_seed(seed)
    if noise > 0:
        model = NoisyDecoding(model, noise, torch.Generator().manual_seed(seed + 1))
    res = attack.run(model, x, levels, 1, targets=xt, generator=gen)
    with torch.no_grad():
        recxa = model.reconstruct(res.x_adv)
        ref = xt[res.image_index] if attack.name == "latent" else model.reconstruct(x)[res.image_index]
    return res, res.loss.double(), ms_ssim(ref, recxa).double(), ms_ssim_paper(ref, recxa).double()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="*", help="checkpoint(s); their rows are pooled")
    parser.add_argument("--images", type=int, default=25, help="test images per checkpoint")
    parser.add_argument("--levels", type=float, nargs="+", default=[1.0, 3.0, 5.0])
    parser.add_argument("--impl-a", default="batched")
    parser.add_argument("--impl-b", default="lbfgsb-authors")
    parser.add_argument("--noise-b", type=float, nargs=2, default=[0.0, 0.0], metavar=("LATENT", "MAX_DAMAGE"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--csv", help="write the per-row values here")
    parser.add_argument("--from-csv", nargs="+", metavar="CSV", help="pool earlier runs' --csv files, attack nothing")
    args = parser.parse_args()
    if args.from_csv:
        summarize(read_csv(args.from_csv))
        return
    if not args.checkpoint:
        parser.error("give a checkpoint or --from-csv")
    if args.threads:
        torch.set_num_threads(args.threads)
    noise_b = dict(zip(("latent", "max_damage"), args.noise_b, strict=True))
    print(
        f"B={args.impl_b} (noise {args.noise_b}) minus A={args.impl_a}, "
        f"{args.images} paired images x {len(args.checkpoint)} checkpoint(s)",
        flush=True,
    )
    records = []
    for ckpt in args.checkpoint:
        cfg, model = load_model(ckpt, device="cpu")
        data = load_dataset(cfg.data)
        idx, tidx = pick_images(data.test.labels, args.images, args.seed, by_class=data.info.class_targets)
        x, xt = data.test.get(idx), data.test.get(tidx)
        with frozen(model):
            for name in ("latent", "max_damage"):
                a = ATTACK_IMPLS.create(args.impl_a, name=name)
                b = ATTACK_IMPLS.create(args.impl_b, name=name)
                ra, *values_a = per_row(model, a, x, xt, args.levels, args.seed + 1, 0.0)
                _, *values_b = per_row(model, b, x, xt, args.levels, args.seed + 1, noise_b[name])
                for row in range(len(ra.level_index)):
                    rec = {"checkpoint": ckpt, "attack": name, "lambda": args.levels[int(ra.level_index[row])]}
                    for label, va, vb in zip(METRICS, values_a, values_b, strict=True):
                        rec[f"{label}_a"], rec[f"{label}_b"] = float(va[row]), float(vb[row])
                    records.append(rec)
                print(f"{ckpt}: {name} done", flush=True)
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    summarize(records)


def read_csv(paths: list[str]) -> list[dict]:
    """Per-row records of earlier runs (``--csv`` files), numbers parsed."""
    records = []
    for path in paths:
        with open(path, newline="") as fh:
            for rec in csv.DictReader(fh):
                records.append({k: v if k in ("checkpoint", "attack") else float(v) for k, v in rec.items()})
    return records


def summarize(records: list[dict]) -> None:
    """B - A per attack, lambda and metric: mean +- 1.96 std / sqrt(n) over all records (paired rows)."""
    for name in ("latent", "max_damage"):
        for level in sorted({r["lambda"] for r in records}):
            rows = [r for r in records if r["attack"] == name and r["lambda"] == level]
            for label in METRICS:
                va = [r[f"{label}_a"] for r in rows]
                d = torch.tensor([r[f"{label}_b"] - r[f"{label}_a"] for r in rows], dtype=torch.float64)
                half = 1.96 * float(d.std()) / math.sqrt(len(d)) if len(d) > 1 else math.nan
                print(
                    f"{name:10s} lambda={level:g} {label:12s} A {sum(va) / len(va):8.3f}  "
                    f"B {sum(va) / len(va) + float(d.mean()):8.3f}  B-A {float(d.mean()):+8.3f} +- {half:.3f} (n={len(d)})"
                )


if __name__ == "__main__":
    main()
