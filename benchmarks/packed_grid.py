"""A sweep's grid trained in packs with ``train_packed``, timed: no Ray, no Optuna, no MLflow.

    python benchmarks/packed_grid.py --json grid.json                         # the 30 points of alpha_modes.yaml
    python benchmarks/packed_grid.py --pack-size 8 --epochs 2 --max-steps 50  # 4 packs (8, 8, 8, 6)
    python benchmarks/packed_grid.py --device cpu --train-limit 1000 --max-steps 3 --epochs 1   # CPU smoke

The definition (default ``sweeps/alpha_modes.yaml``) is read and validated by
``radae.sweep.definition`` (which imports no orchestration library); its grid is enumerated in
order, cut into packs of ``--pack-size`` (default: the whole grid in one pack) and each pack is
trained by ``radae.fast.train_packed`` at a short budget (``--epochs``, ``--max-steps`` per epoch,
``--train-limit`` images) on data loaded once. The JSON holds the wall time of the whole grid and of
each pack, model-steps/s, and each member's status and best validation loss. A member that
diverges is reported (``status: diverged``), not an error; the exit status is 1 if any pack raised.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from radae.config import apply_overrides
from radae.data import load_dataset
from radae.fast import PackConfig, train_packed
from radae.sweep.definition import load_definition
from radae.trainer import resolve_device

ROOT = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def grid_configs(args: argparse.Namespace, out_root: Path) -> tuple[list[Any], list[dict[str, Any]]]:
    """The definition's grid points as RunConfigs with the short budget applied, one out_dir each."""
    budget = {
        "train.epochs": args.epochs,
        "train.max_steps_per_epoch": args.max_steps,
        "train.device": args.device,
        "train.step_mode": args.step_mode,
        "data.download": False,
    }
    if args.train_limit:
        budget["data.train_limit"] = args.train_limit
    if args.val_size:
        budget["data.val_size"] = args.val_size
    if args.data_dir:
        budget["data.data_dir"] = args.data_dir
    defn = load_definition(args.definition, extra=budget)
    base = defn.base_config(budget)
    points = defn.space.grid_points()
    cfgs = [
        apply_overrides(
            defn.space.to_config(base, params), {"train.out_dir": str(out_root / f"p{i:02d}"), "train.seed": i}
        )
        for i, params in enumerate(points)
    ]
    return cfgs, points


def run(args: argparse.Namespace) -> dict[str, Any]:
    out_root = Path(args.work_dir or tempfile.mkdtemp(prefix="packed_grid-"))
    cfgs, points = grid_configs(args, out_root)
    device = resolve_device(cfgs[0].train.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    size = args.pack_size or len(cfgs)
    t_load = time.perf_counter()
    data = load_dataset(cfgs[0].data, device)
    load_s = time.perf_counter() - t_load
    packs, members, failed = [], [], False
    sync(device)
    t_all = time.perf_counter()
    for start in range(0, len(cfgs), size):
        chunk = cfgs[start : start + size]
        sync(device)
        t0 = time.perf_counter()
        row: dict[str, Any] = {"first_point": start, "size": len(chunk)}
        try:
            results = train_packed(chunk, data=data, pack=PackConfig(size=len(chunk), noise=args.noise), progress=False)
            sync(device)
            row["wall_s"] = time.perf_counter() - t0
            row["status"] = "ok"
            for k, res in enumerate(results):
                s = res.summary
                members.append({"point": start + k, **points[start + k], "status": s.get("status"),
                                "best_val": s.get("best_val"), "epochs": len(res.history), "error": s.get("error")})  # fmt: skip
        except Exception as err:  # noqa: BLE001 - one failing pack is reported, the next still runs
            row["wall_s"] = time.perf_counter() - t0
            row["status"] = "error"
            row["error"] = f"{type(err).__name__}: {err}"
            traceback.print_exc()
            failed = True
        packs.append(row)
        print(f"pack at point {start} ({len(chunk)} members): {row['status']} in {row['wall_s']:.1f} s", flush=True)
    total_s = time.perf_counter() - t_all
    c0 = cfgs[0]
    steps_per_epoch = min(c0.train.max_steps_per_epoch or 10**9, len(data.train) // c0.train.batch_size)
    model_steps = sum(r["size"] for r in packs if r["status"] == "ok") * steps_per_epoch * c0.train.epochs
    return {
        "definition": str(args.definition),
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "data": f"{c0.data.name} ({data.source}), {len(data.train)} training images",
        "step_mode": c0.train.step_mode,
        "configurations": len(cfgs),
        "pack_size": size,
        "packs": packs,
        "epochs": c0.train.epochs,
        "steps_per_epoch": steps_per_epoch,
        "data_load_s": load_s,
        "grid_wall_s": total_s,
        "model_steps": model_steps,
        "model_steps_per_s_incl_validation": model_steps / total_s if total_s > 0 else None,
        "members_ok": sum(m["status"] == "ok" for m in members),
        "members_diverged": sum(m["status"] == "diverged" for m in members),
        "members": members,
        "failed": failed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--definition", default=str(ROOT / "sweeps" / "alpha_modes.yaml"), help="sweep definition with a grid space"
    )
    parser.add_argument("--pack-size", type=int, default=None, help="members per pack (default: the whole grid)")
    parser.add_argument("--epochs", type=int, default=2, help="train.epochs of every member")
    parser.add_argument("--max-steps", type=int, default=100, help="train.max_steps_per_epoch")
    parser.add_argument("--train-limit", type=int, default=None, help="data.train_limit (default: all training images)")
    parser.add_argument("--val-size", type=int, default=None, help="data.val_size (default: the config's)")
    parser.add_argument("--data-dir", default=None, help="data.data_dir (else $RADAE_DATA_DIR, system copies)")
    parser.add_argument("--device", default="auto", help="train.device: auto, cpu, cuda")
    parser.add_argument("--step-mode", default="auto", help="train.step_mode: auto, eager, graph")
    parser.add_argument("--noise", default="member", help="PackConfig.noise: member or shared")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    parser.add_argument(
        "--work-dir", default=None, help="folder for the members' run folders (default: a temporary one)"
    )
    parser.add_argument("--json", default=None, help="write the results as JSON to this file")
    args = parser.parse_args(argv)
    if args.pack_size is not None and args.pack_size < 1:
        parser.error(f"--pack-size must be >= 1, got {args.pack_size}")
    result = run(args)
    print(
        f"{result['configurations']} configurations in {len(result['packs'])} pack(s) of <= {result['pack_size']} on {result['device']}: "
        f"{result['grid_wall_s']:.1f} s, {result['members_ok']} ok, {result['members_diverged']} diverged, "
        f"{result['model_steps_per_s_incl_validation'] or 0:.1f} model-steps/s incl. validation",
        flush=True,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
