"""Evaluation outputs: attack grids per lambda (paper figs. 2-9), attack loss against lambda
(fig. 11), the Parquet/JSON tables and the printed summary.

Every file is written atomically (temporary file, then ``os.replace``), with the Agg backend, so
plotting works without a display and a crash never leaves a half-written PNG under the final name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from radae.checkpoint import write_atomic
from radae.objective import level_tag

# Row labels of an attack grid, top to bottom, as in the paper's figures.
GRID_ROWS = ("source x", "clean recon", "adversarial x_a", "adversarial recon", "target x_t")


def level_suffix(level: float) -> str:
    """The lambda part of metric and file names: 1.0 -> ``l1``, 0.5 -> ``l0.5`` (``l`` + objective.level_tag)."""
    return f"l{level_tag(level)}"


def _save(fig, path: Path) -> Path:
    return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png"))


def _as_hwc(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W) grey or (H, W, 3) for imshow."""
    arr = img.detach().float().clamp(0, 1).cpu().numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def attack_grid(
    path: str | os.PathLike[str],
    rows: Sequence[torch.Tensor],
    *,
    title: str,
    labels: Sequence[str] = GRID_ROWS,
) -> Path:
    """A grid with one image row per tensor in ``rows`` (each (K, C, H, W) in [0, 1]) and K columns.

    Rows are, as in the paper's figures: source, clean reconstruction, adversarial input,
    adversarial reconstruction, and (latent attack only) the target.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), len(rows[0])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.2 * n_cols + 1.4, 1.2 * n_rows + 0.4), squeeze=False)
    for r, images in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.imshow(_as_hwc(images[c]), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(labels[r], fontsize=8)
    fig.suptitle(title, fontsize=10)
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def loss_vs_lambda(
    path: str | os.PathLike[str], curves: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float]]]
) -> Path:
    """Attack loss against lambda (paper fig. 11): one panel per attack, mean with std bars.

    ``curves``: attack name -> (lambdas, means, stds).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), squeeze=False)
    ylabels = {"latent": "||E(x_a) - E(x_t)||^2 (lower = stronger)", "max_damage": "||G(E(x_a)) - G(E(x))||_2"}
    for ax, (name, (lams, means, stds)) in zip(axes[0], curves.items(), strict=True):
        ax.errorbar(lams, means, yerr=stds, marker="o", capsize=3)
        ax.set_xlabel("lambda (L2 budget, pixels)")
        ax.set_ylabel(ylabels.get(name, "attack loss"), fontsize=8)
        ax.set_title(f"{name} attack")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def _atomic_file(path: Path, write: Callable[[Path], None]) -> str:
    return str(write_atomic(path, write))


def write_tables(
    out: Path,
    metrics: dict,
    rows: list[dict],
    eval_config: dict,
    wall: float,
    per_image: Mapping[str, Mapping[int, float]] | None = None,
) -> list[str]:
    """``eval.parquet`` (long format), ``images.parquet`` (per image: image, name, value) when ``per_image``
    is given, then ``eval.json`` (last: its presence means the run finished)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ["name", "metric", "compared", "attack", "lambda", "mean", "std", "n"]
    table = pa.table({c: [r[c] for r in rows] for c in columns})
    written = [_atomic_file(out / "eval.parquet", lambda p: pq.write_table(table, p))]
    if per_image:
        flat = [(int(i), name, float(v)) for name, values in per_image.items() for i, v in values.items()]
        images = pa.table({"image": [r[0] for r in flat], "name": [r[1] for r in flat], "value": [r[2] for r in flat]})
        written.append(_atomic_file(out / "images.parquet", lambda p: pq.write_table(images, p)))
    doc = {"metrics": metrics, "rows": rows, "eval_config": eval_config, "wall_s": wall}
    written.append(_atomic_file(out / "eval.json", lambda p: p.write_text(json.dumps(doc, indent=1))))  # last
    return written


def summary(metrics: dict[str, float], levels) -> str:
    """The headline table: latent MS-SSIM(x_t, recon x_a) and max-damage MS-SSIM(recon x, recon x_a),
    each as the standard MS-SSIM and the paper's (``msssim_paper``), and the accuracies."""
    lines = [
        "lambda  latent MS-SSIM(x_t,rec x_a)  max-damage MS-SSIM(rec x,rec x_a)  acc latent       acc max-damage",
        "        standard / paper's formula   standard / paper's formula",
    ]

    def cell(key: str) -> str:
        mean = metrics.get(f"{key}_mean")
        return "-" if mean is None else f"{mean:.3f}"

    def acc(key: str, width: int) -> str:
        mean, std = metrics.get(f"{key}_mean"), metrics.get(f"{key}_std")
        return (f"{mean:.3f} +- {std:.3f}" if mean is not None else "-").ljust(width)

    for lv in levels:
        t = level_suffix(lv)
        latent = f"{cell(f'latent_msssim_xt_recxa_{t}')} / {cell(f'latent_msssim_paper_xt_recxa_{t}')}"
        damage = f"{cell(f'max_damage_msssim_recx_recxa_{t}')} / {cell(f'max_damage_msssim_paper_recx_recxa_{t}')}"
        lines.append(
            f"{lv:<8g}{latent:<29}{damage:<35}{acc(f'latent_acc_source_{t}', 17)}{acc(f'max_damage_acc_source_{t}', 17)}"
        )
    for key in ("clean_msssim_x_recx", "clean_msssim_paper_x_recx", "fid_classifier", "fid_inception"):
        if f"{key}_mean" in metrics:
            lines.append(f"{key}: {metrics[f'{key}_mean']:.3f} +- {metrics[f'{key}_std']:.3f}")
    if "classifier_acc_clean" in metrics:
        lines.append(f"classifier_acc_clean: {metrics['classifier_acc_clean']:.4f}")
    return "\n".join(lines)
