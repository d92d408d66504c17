"""Where the paper's numbers fall among the numbers the authors' protocol prints for a radae model.

    python benchmarks/authors_protocol.py CKPT --k 10 --draws 30 --restarts 10 --csv rows.csv --plot dist.png
    python benchmarks/authors_protocol.py CKPT [CKPT ...] --k 1      # seeds of one configuration, pooled

The authors' released scripts print, per lambda, the mean over L-BFGS-B restarts on one random test
image, with latent noise on (:mod:`radae.authors_protocol`). This repeats that whole protocol on
``--draws`` independent images per checkpoint (draws of all checkpoints pooled) and prints, per attack
and lambda: the distribution of the printed number (mean, sd, 5/50/95% quantiles), the paper's value
for the model of table 2's row K (:mod:`radae.analysis.paper`, the appendix's table 2 at alpha 0.95;
K 10 is table 1's robust GMM AE) and its percentile among the draws (share of draws at or below it,
exact 95% Clopper-Pearson interval), and the perturbation's MS-SSIM(x, x_a) and L2 beside the paper's
MS-SSIM(x, x_a) column. All MS-SSIMs are the paper's formula.
"""

from __future__ import annotations

import argparse
import csv
import sys

import torch

from radae.analysis import paper
from radae.authors_protocol import ProtocolSettings, draw_distribution, percentile, summary
from radae.checkpoint import load_model
from radae.data import load_dataset
from radae.evaluate import frozen, pick_images

PAIR = {"latent": "msssim_paper_xt_recxa", "max_damage": "msssim_paper_recx_recxa"}
BETTER = {"latent": "lower = more robust", "max_damage": "higher = more robust"}


def paper_values(k: int, attack: str, level: float) -> tuple[float | None, float | None]:
    """(the paper's MS-SSIM of the attack's pair, its MS-SSIM(x, x_a)) for table 2's row K at ``level``."""
    row = paper.TABLE2.get(k)
    if row is None or level not in paper.LEVELS:
        return None, None
    i = paper.LEVELS.index(int(level))
    visible = row.latent_x_xa if attack == "latent" else row.max_damage_x_xa
    return getattr(row, attack)[i], (visible[i] if visible else None)


def plot(path: str, rows: list[dict], cfg: ProtocolSettings, k: int) -> None:
    """One histogram per attack and lambda of the printed number, the paper's value as a line."""
    import matplotlib  # lazy: only for --plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(cfg.attacks), len(cfg.levels), figsize=(4 * len(cfg.levels), 3 * len(cfg.attacks)))
    for a, name in enumerate(cfg.attacks):
        for li, level in enumerate(cfg.levels):
            ax = axes[a][li] if len(cfg.attacks) > 1 else axes[li]
            values = [r[PAIR[name]] for r in rows if r["attack"] == name and r["lambda"] == level]
            ax.hist(values, bins=15, range=(0, 1), color="tab:blue", alpha=0.7)
            value, _ = paper_values(k, name, level)
            if value is not None:
                ax.axvline(value, color="tab:red", label=f"paper {value:.2f}")
                ax.legend(loc="upper left", fontsize=8)
            ax.set_title(f"{name}, lambda {level:g} ({BETTER[name]})", fontsize=9)
            ax.set_xlabel(f"{PAIR[name]} printed by one run of the protocol", fontsize=8)
    fig.suptitle(f"The authors' protocol on radae's K={k} model(s): {len(values)} independent images per cell")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="+")
    parser.add_argument("--k", type=int, required=True, help="the models' K: the paper's table-2 row to compare")
    parser.add_argument("--draws", type=int, default=30, help="independent images per checkpoint")
    parser.add_argument("--restarts", type=int, default=10, help="L-BFGS-B restarts per image (their num_images)")
    parser.add_argument("--levels", type=float, nargs="+", default=[3.0, 5.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--csv", help="write one row per draw here")
    parser.add_argument("--plot", help="write the histograms here (PNG)")
    args = parser.parse_args()
    if args.k not in paper.TABLE2:
        parser.error(f"--k {args.k}: the paper's table 2 has K {sorted(paper.TABLE2)}")
    torch.set_num_threads(args.threads)
    cfg = ProtocolSettings(draws=args.draws, restarts=args.restarts, levels=tuple(args.levels), seed=args.seed)
    rows = []
    for c, ckpt in enumerate(args.checkpoint):
        run_cfg, model = load_model(ckpt, device="cpu")
        data = load_dataset(run_cfg.data)
        idx, tidx = pick_images(data.test.labels, cfg.draws, 1000 + args.seed + c, by_class=data.info.class_targets)

        def show(done: int, total: int, ckpt: str = ckpt) -> None:
            print(f"\r{ckpt}: {done}/{total} (draw, attack, lambda) cells", end="", file=sys.stderr, flush=True)

        with frozen(model):
            for row in draw_distribution(model, data.test.get(idx), data.test.get(tidx), cfg, progress=show):
                rows.append({"checkpoint": ckpt} | row)
        print(file=sys.stderr)
    print(f"The authors' protocol: {cfg.restarts} L-BFGS-B restarts per image, latent noise on; "
          f"{len(rows) // (len(cfg.attacks) * len(cfg.levels))} independent images per cell")  # fmt: skip
    for name in cfg.attacks:
        for level in cfg.levels:
            cell = [r for r in rows if r["attack"] == name and r["lambda"] == level]
            s = summary([r[PAIR[name]] for r in cell])
            value, visible = paper_values(args.k, name, level)
            line = (
                f"{name:10s} lambda {level:g}: {PAIR[name]} mean {s['mean']:.3f} sd {s['sd']:.3f} "
                f"q05/q50/q95 {s['q05']:.3f}/{s['q50']:.3f}/{s['q95']:.3f} ({BETTER[name]})"
            )
            if value is not None:
                share, low, high = percentile([r[PAIR[name]] for r in cell], value)
                line += f"; paper {value:.2f} at percentile {100 * share:.0f} (95% {100 * low:.0f}-{100 * high:.0f})"
            vis = summary([r["msssim_paper_x_xa"] for r in cell])
            l2 = summary([r["l2_x_xa"] for r in cell])
            line += f"; MS-SSIM(x, x_a) {vis['mean']:.3f}" + (f" (paper {visible:.2f})" if visible else "")
            line += f", L2 {l2['mean']:.2f}"
            print(line, flush=True)
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            # The attacks' rows carry different pairs: every column any row has, blank where a row lacks it.
            writer = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
            writer.writeheader()
            writer.writerows(rows)
    if args.plot:
        plot(args.plot, rows, cfg, args.k)


if __name__ == "__main__":
    main()
