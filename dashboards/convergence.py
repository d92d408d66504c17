"""Clean reconstruction and robustness along training, over seeds: a Markdown table and a figure from run folders.

    python dashboards/convergence.py runs/k10-s0 runs/k10-s1 runs/k10-s2 --md conv.md --plot conv.png
    python dashboards/convergence.py 'K 10=runs/k10-s*' 'K 25=runs/k25-s*' --plot conv.png   # groups
    python dashboards/convergence.py 'K 10=runs/k10-s*' 'K 25=runs/k25-s*' --epochs 12 30 60 --compare 12 60

Reads each run folder's ``metrics.jsonl`` (the robustness probe's ``probe_*`` metrics every
``probe.every`` epochs, :mod:`radae.probe`: fixed test images and starts, both attacks, the paper's
MS-SSIM) and prints, per group and probed epoch, the mean over the group's runs (seeds) with a 95%
Student-t interval over those seeds (clipped to [0, 1], every column's range). The probe's images and
starts are the same for every seed and epoch, so the interval is over training seeds only; image-to-image
spread is not in it. Also prints the
epoch where clean MS-SSIM(x, rec x) stops improving (the last epoch whose mean exceeds the best before it
by more than ``--plateau``) and the epoch of the highest probe R. ``--epochs`` shows only those epochs' rows;
``--compare A B`` adds one table over the groups: each column's change from epoch A to B, mean over seeds
with a 95% t-interval of the per-seed differences (paired by seed: the same run at both epochs). Pick A
before looking (a peak epoch found in the same data makes the change look larger than it is).
"""

from __future__ import annotations

import argparse
import glob
import math
import statistics
import sys
from pathlib import Path

from radae.analysis.aggregate import t_half_width
from radae.analysis.curves import read_history

# Column -> (per-epoch metric, header). MS-SSIMs are the paper's formula.
COLUMNS = {
    "clean": ("probe_clean_msssim_paper_x_recx", "clean MS-SSIM(x, rec x)"),
    "md3": ("probe_max_damage_msssim_paper_recx_recxa_l3", "max damage l3 (higher = robust)"),
    "md5": ("probe_max_damage_msssim_paper_recx_recxa_l5", "max damage l5"),
    "lat3": ("probe_latent_msssim_paper_xt_recxa_l3", "latent l3 (lower = robust)"),
    "lat5": ("probe_latent_msssim_paper_xt_recxa_l5", "latent l5"),
    "R": ("probe_robustness_paper", "probe R (paper)"),
}


def groups_of(specs: list[str]) -> dict[str, list[Path]]:
    """``label=glob`` or a plain folder (its own group of one, labelled ``all``) -> run folders."""
    out: dict[str, list[Path]] = {}
    for spec in specs:
        label, _, pattern = spec.rpartition("=") if "=" in spec else ("all", "", spec)
        folders = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_dir())  # run folders, not their logs
        if not folders:
            raise ValueError(f"{spec}: no run folder matches")
        out.setdefault(label, []).extend(folders)
    return out


def trajectories(folders: list[Path]) -> dict[int, dict[str, list[float]]]:
    """Probed epoch -> column -> the runs' values (runs that probed that epoch)."""
    out: dict[int, dict[str, list[float]]] = {}
    for folder in folders:
        history = read_history(folder)
        if not history:
            raise ValueError(f"{folder}: no metrics.jsonl")
        for line in history:
            if COLUMNS["R"][0] not in line:
                continue
            cell = out.setdefault(int(line["epoch"]), {c: [] for c in COLUMNS})
            for column, (metric, _) in COLUMNS.items():
                if metric in line and math.isfinite(line[metric]):
                    cell[column].append(float(line[metric]))
    return dict(sorted(out.items()))


def mean_ci(values: list[float]) -> tuple[float, float]:
    """(mean, 95% t half-width over the values; nan for one value)."""
    if not values:
        return math.nan, math.nan
    half = t_half_width(statistics.stdev(values), len(values)) if len(values) > 1 else math.nan
    return statistics.fmean(values), half


def plateau_epoch(traj: dict[int, dict[str, list[float]]], tolerance: float) -> int:
    """The last probed epoch whose mean clean MS-SSIM exceeds the best mean before it by more than ``tolerance``."""
    best, last = -math.inf, min(traj)
    for epoch, cell in traj.items():
        mean = statistics.fmean(cell["clean"])
        if mean > best + tolerance:
            last = epoch
        best = max(best, mean)
    return last


def interval_text(m: float, h: float) -> str:
    """``mean [low, high]``, the t-interval clipped to [0, 1] (every column is an MS-SSIM or R)."""
    if math.isnan(h):
        return f"{m:.3f}"
    return f"{m:.3f} [{max(m - h, 0.0):.3f}, {min(m + h, 1.0):.3f}]"


def paired_change(traj: dict[int, dict[str, list[float]]], a: int, b: int, column: str) -> str:
    """``mean [t-interval]`` of the per-seed change of ``column`` from epoch ``a`` to ``b``. Runs are paired by
    their order in ``traj``, so every run of the group must have probed both epochs (same ``probe.every``);
    unequal counts give "—"."""
    va, vb = traj[a][column], traj[b][column]
    if len(va) != len(vb) or not va:
        return "—"
    m, h = mean_ci([y - x for x, y in zip(va, vb, strict=True)])
    return f"{m:+.3f}" if math.isnan(h) else f"{m:+.3f} [{m - h:+.3f}, {m + h:+.3f}]"


def compare_markdown(groups: dict[str, dict[int, dict[str, list[float]]]], a: int, b: int) -> str:
    """One row per group: each column's value at ``b`` and its change from ``a`` to ``b``, paired by seed."""
    missing = [label for label, traj in groups.items() if a not in traj or b not in traj]
    if missing:
        raise ValueError(f"--compare {a} {b}: the runs of {missing} did not probe both epochs")
    head = ["group", "seeds", *(f"{h} at {b}" for c, (_, h) in COLUMNS.items() if c in ("clean", "R"))]
    head += [f"{h}: {b} - {a}" for _, h in COLUMNS.values()]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for label, traj in groups.items():
        at_b = [mean_ci(traj[b][c]) for c in ("clean", "R")]
        cells = [label, str(len(traj[b]["R"]))] + [interval_text(m, h) for m, h in at_b]
        cells += [paired_change(traj, a, b, c) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(label: str, traj: dict[int, dict[str, list[float]]], tolerance: float, epochs=None) -> str:
    seeds = max(len(c["R"]) for c in traj.values())
    head = "| epoch | " + " | ".join(h for _, h in COLUMNS.values()) + " |"
    lines = [
        f"**{label}** ({seeds} seeds; mean [95% t-interval over seeds])",
        "",
        head,
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for epoch, cell in traj.items():
        if epochs and epoch not in epochs:
            continue
        cells = []
        for column in COLUMNS:
            m, h = mean_ci(cell[column])
            cells.append(interval_text(m, h))
        lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    peak = max(traj, key=lambda e: statistics.fmean(traj[e]["R"]))
    lines += [
        "",
        f"Clean MS-SSIM stops improving (by more than {tolerance}) after epoch {plateau_epoch(traj, tolerance)}; "
        f"probe R is highest at epoch {peak}.",
    ]
    return "\n".join(lines)


def plot(path: str, groups: dict[str, dict[int, dict[str, list[float]]]]) -> None:
    import matplotlib  # lazy: only for --plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("clean", "clean MS-SSIM(x, rec x), paper formula"),
        ("R", "probe R (paper), higher = more robust"),
        ("md3", "max damage lambda 3 / 5 (solid / dashed)"),
        ("lat3", "latent lambda 3 / 5 (lower = robust)"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for k, (label, traj) in enumerate(groups.items()):
        color = f"C{k}"
        epochs = list(traj)
        for ax, (column, title) in zip(axes, panels, strict=True):
            pairs = [(column, "-")] + ([(column[:-1] + "5", "--")] if column in ("md3", "lat3") else [])
            for col, style in pairs:
                stats = [mean_ci(traj[e][col]) for e in epochs]
                means = [m for m, _ in stats]
                halves = [0.0 if math.isnan(h) else h for _, h in stats]
                ax.plot(epochs, means, style, color=color, label=label if style == "-" else None)
                ax.fill_between(
                    epochs,
                    [m - h for m, h in zip(means, halves, strict=True)],
                    [m + h for m, h in zip(means, halves, strict=True)],
                    color=color,
                    alpha=0.15,
                )
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("epoch")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "Along training: mean over seeds, band = 95% t-interval over seeds (probe: fixed images and starts)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders, or LABEL=GLOB for a group of seeds")
    p.add_argument("--md", help="write the tables here as well (Markdown)")
    p.add_argument("--plot", help="write the figure here (PNG)")
    p.add_argument("--plateau", type=float, default=0.002, help="clean MS-SSIM gain that still counts as improving")
    p.add_argument("--epochs", type=int, nargs="+", help="show only these probed epochs in the tables")
    p.add_argument("--compare", type=int, nargs=2, metavar=("A", "B"), help="change from epoch A to B, paired by seed")
    args = p.parse_args(argv)
    try:
        groups = {label: trajectories(folders) for label, folders in groups_of(args.runs).items()}
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    empty = [label for label, traj in groups.items() if not traj]
    if empty:
        print(f"error: no probe metrics in the runs of {empty} (trained with probe.every 0?)", file=sys.stderr)
        return 2
    text = "\n\n".join(markdown(label, traj, args.plateau, args.epochs) for label, traj in groups.items())
    if args.compare:
        try:
            table = compare_markdown(groups, *args.compare)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        text += f"\n\n**From epoch {args.compare[0]} to {args.compare[1]}** (mean over seeds [95% t-interval of the per-seed changes])\n\n{table}"
    print(text)
    if args.md:
        Path(args.md).write_text(text + "\n")
    if args.plot:
        plot(args.plot, groups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
