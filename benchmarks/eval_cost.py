"""Evaluation cost before and after a change, side by side in one process: same model, data and protocol.

    python benchmarks/eval_cost.py --base b294246           # full protocol, process CPU time, one thread
    python benchmarks/eval_cost.py --base b294246 --quick   # small protocol (smoke run)

"before" runs :func:`radae.evaluate.evaluate` with the base commit's versions of the two functions
the evaluation speed-ups replaced, loaded from git (``git show <base>:<file>``):
``radae.attacks.base.project_l2_box`` (the attacks' projection after every step) and
``radae.fid.compute_fid`` (FID; before: validation features recomputed in every run); "after" runs
this checkout's. The two alternate (before, after, before, ...) for ``--rounds`` rounds and each
stage's median process CPU time (``time_<stage>_cpu_s``) is reported with the before/after ratio,
plus the largest difference of any reported metric between the two (same numbers expected up to
float rounding; FID to ~1e-3: before went through torch-fidelity when installed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import torch

from radae.attacks import base as attack_base
from radae.config import RunConfig, apply_overrides
from radae.evaluate import classifier_space, evaluate
from radae.models import create_model

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("classifier", "attack_latent", "attack_max_damage", "metrics_latent", "metrics_max_damage", "fid")
REPLACED = {"attacks": "radae/attacks/base.py", "fid": "radae/fid.py"}


def load_base(commit: str, path: str, name: str):
    """The module ``path`` as it was at ``commit`` (imported under ``name``; it imports radae as usual)."""
    source = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True)
    folder = Path(tempfile.mkdtemp(prefix="radae-base-"))
    (folder / f"{name}.py").write_text(source.stdout)
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run(model, data, cfg, space, fid_module, projection) -> dict[str, float]:
    """One evaluation with the given FID module and projection; its flat metrics."""
    from radae import evaluate as ev  # noqa: PLC0415  (the module whose fid reference is swapped)

    saved = ev.fid, attack_base.project_l2_box
    ev.fid, attack_base.project_l2_box = fid_module, projection
    try:
        return evaluate(model, data, cfg.eval, device="cpu", progress=False, feature_net=space).metrics
    finally:
        ev.fid, attack_base.project_l2_box = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git commit of the 'before' versions")
    parser.add_argument("--quick", action="store_true", help="small protocol (smoke run)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating before/after rounds (median)")
    parser.add_argument("--json", default=None, help="write the results as JSON to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    from radae import fid as fid_after  # noqa: PLC0415
    from radae.data import load_dataset  # noqa: PLC0415

    fid_base = load_base(args.base, REPLACED["fid"], "radae_base_fid")
    # The base's compute_fid, called as evaluate calls it now (it had no reference statistics to cache).
    fid_before = types.SimpleNamespace(**vars(fid_base))
    fid_before.compute_fid = lambda *a, stats_cache=None, **kw: fid_base.compute_fid(*a, **kw)
    attacks_before = load_base(args.base, REPLACED["attacks"], "radae_base_attacks")
    ev: dict[str, Any] = {"data.name": "mnist", "data.download": False, "loss.weight_batches": 10}
    if args.quick:
        ev |= {"eval.images": 6, "eval.trials": 2, "eval.attack_steps": 20, "eval.fid_samples": 1000}
        ev |= {"eval.fid_runs": 2, "eval.classifier_epochs": 1, "eval.feature_epochs": 1}
    cfg = apply_overrides(RunConfig(), ev)
    data = load_dataset(cfg.data)
    space = classifier_space(data, cfg.eval, log=lambda s: None)  # a sweep builds it once, before trials
    torch.manual_seed(0)
    model = create_model(cfg, data.info.image_shape).eval()
    with tempfile.TemporaryDirectory() as stats:
        cfg = apply_overrides(cfg, {"eval.feature_cache": stats})  # the reference statistics start uncached
        warm = apply_overrides(cfg, {"eval.images": 2, "eval.trials": 1, "eval.attack_steps": 2, "eval.fid_runs": 1})
        run(
            model,
            data,
            apply_overrides(warm, {"eval.fid_samples": 100, "eval.classifier_epochs": 1}),
            space,
            fid_after,
            attack_base.project_l2_box,
        )  # warm-up (allocator, lazy imports); not timed
        times: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        metrics: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):
            for label, fid_module, projection in (
                ("before", fid_before, attacks_before.project_l2_box),
                ("after", fid_after, attack_base.project_l2_box),
            ):
                m = run(model, data, cfg, space, fid_module, projection)
                times[label].append({s: m[f"time_{s}_cpu_s"] for s in STAGES} | {"total": m["eval_cpu_s"]})
                metrics[label] = m
    med = {k: {s: statistics.median(t[s] for t in v) for s in (*STAGES, "total")} for k, v in times.items()}
    # every reported number but timings, FID (compared on its own: see the module doc) and the attack strength
    # probe (a ratio to a float32 L-BFGS-B run, which turns the projection's 1e-7 rounding into visible changes)
    values = [
        k
        for k in metrics["after"]
        if not k.startswith(("time_", "eval_", "fid_")) and "_strength_lbfgsb_" not in k and k in metrics["before"]
    ]
    diff = {k: abs(metrics["after"][k] - metrics["before"][k]) for k in values}
    worst = max(diff, key=diff.get)
    e = cfg.eval
    result = {
        "base": args.base,
        "protocol": f"{e.images} images x {e.trials} trials x {len(e.levels)} lambdas x 2 attacks, "
        f"{e.attack_steps} steps; latent MLP {e.classifier_epochs} epochs; FID {e.fid_runs} x {e.fid_samples}",
        "clock": "process CPU time, 1 thread",
        "rounds": args.rounds,
        "before": med["before"],
        "after": med["after"],
        "ratio_before_over_after": {s: med["before"][s] / max(med["after"][s], 1e-9) for s in med["after"]},
        "largest_metric_difference": {"metric": worst, "abs": diff[worst]},
        "fid_before_after": [metrics["before"].get("fid_classifier_mean"), metrics["after"].get("fid_classifier_mean")],
    }
    print(f"{result['protocol']}; {result['clock']}; median of {args.rounds}")
    print(f"{'stage':<22}{'before s':>10}{'after s':>10}{'ratio':>8}")
    for s in (*STAGES, "total"):
        print(f"{s:<22}{med['before'][s]:>10.2f}{med['after'][s]:>10.2f}{result['ratio_before_over_after'][s]:>7.2f}x")
    print(f"largest metric difference: {worst} {diff[worst]:.3g}; FID before/after {result['fid_before_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
