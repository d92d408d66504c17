"""fp32 vs bf16 training on the same seeds: paired differences of the evaluation's headline metrics.

    python benchmarks/precision_equivalence.py --seeds 3 --epochs 3 --train-limit 10000 --json out.json

Each seed trains the MNIST robust autoencoder twice (``train.precision`` fp32 and bf16, all else
equal), then evaluates both in fp32 with the same protocol. Reported per metric: the mean paired
difference bf16 - fp32 over seeds with a 95% t-interval (n - 1 degrees of freedom).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from radae.checkpoint import load_model
from radae.config import EvalConfig, RunConfig, apply_overrides
from radae.data import load_dataset
from radae.evaluate import evaluate
from radae.trainer import train

METRICS = (
    "clean_msssim_x_recx_mean",
    "max_damage_msssim_recx_recxa_l3_mean",
    "max_damage_msssim_recx_recxa_l5_mean",
    "latent_msssim_xt_recxa_l3_mean",
    "latent_msssim_xt_recxa_l5_mean",
)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=10000)
    parser.add_argument("--images", type=int, default=50, help="eval.images (eval.trials 2, lambdas 3 and 5)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if not 2 <= args.seeds <= 10:
        parser.error("--seeds must be in 2..10 (a t-interval needs two)")
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    base = {"data.name": "mnist", "data.download": False, "data.train_limit": args.train_limit}
    base |= {"train.epochs": args.epochs, "train.device": "cpu", "loss.weight_batches": 10}
    data = load_dataset(apply_overrides(RunConfig(), base).data)
    protocol = EvalConfig(images=args.images, trials=2, levels=(3.0, 5.0), fid=False, classifier_epochs=0)
    values: dict[str, dict[str, list[float]]] = {p: {m: [] for m in METRICS} for p in ("fp32", "bf16")}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for precision in ("fp32", "bf16"):
                out = str(Path(tmp) / f"{precision}-{seed}")
                cfg = apply_overrides(RunConfig(), base | {"train.seed": seed, "train.precision": precision})
                cfg = apply_overrides(cfg, {"train.out_dir": out})
                result = train(cfg, data=data, progress=False)
                _, model = load_model(result.checkpoint)
                metrics = evaluate(model, data, protocol, device="cpu", progress=False).metrics
                for m in METRICS:
                    values[precision][m].append(metrics[m])
                print(f"seed {seed} {precision}: " + ", ".join(f"{m} {metrics[m]:.4f}" for m in METRICS), flush=True)
    n = args.seeds
    table = {}
    for m in METRICS:
        diffs = [b - a for a, b in zip(values["fp32"][m], values["bf16"][m], strict=True)]
        mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
        half = T95[n - 1] * sd / n**0.5
        table[m] = {"fp32_mean": statistics.mean(values["fp32"][m]), "bf16_mean": statistics.mean(values["bf16"][m])}
        table[m] |= {"diff_mean": mean, "ci95": [mean - half, mean + half], "n": n}
    print(f"{'metric':<40}{'fp32':>8}{'bf16':>8}{'bf16-fp32':>11}  95% CI")
    for m, r in table.items():
        lo, hi = r["ci95"]
        print(f"{m:<40}{r['fp32_mean']:>8.4f}{r['bf16_mean']:>8.4f}{r['diff_mean']:>+11.4f}  [{lo:+.4f}, {hi:+.4f}]")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "values": values, "table": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
