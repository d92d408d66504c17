"""Training and evaluation throughput of radae against a plain PyTorch loop, in one process on one device.

    python benchmarks/throughput.py                 # full run (GPU: packs of 32 and 128, 300 timed steps)
    python benchmarks/throughput.py --pack 32,128   # several pack sizes, each its own row (c)
    python benchmarks/throughput.py --quick         # CPU smoke run in about a minute (CI)
    python benchmarks/throughput.py --json out.json # also write the table as JSON
    python benchmarks/throughput.py --eval-breakdown # also each evaluation stage, fp32 and bf16

Rows (model: the MNIST MLP autoencoder, batch 100, FGSM training step, eq. 9 losses):

- (a) ``plain``: what one writes by hand: DataLoader over a TensorDataset (shuffled, batches
  moved to the device), the same MLP, FGSM with random start, KS/CV losses from radae.losses,
  Adam; eager, one model.
- (b) ``radae``: radae's single-trial step, ``radae.trainsteps.make_train_step`` with
  ``train.step_mode=auto`` (CUDA graph on GPU, eager on CPU) and ``radae.trainsteps.make_optimizer``
  (fused Adam), data resident on the device.
- (c) ``packed``: ``radae.fast.PackedModels`` training ``--pack`` configurations (different
  alpha and modes) at once with torch.func.vmap, the whole pack step as one CUDA graph on GPU
  (``PackedGraph``), eager on CPU; throughput counted in model-steps/s. ``--pack 32,128`` times
  one row per size (JSON ``packed``); the top-level ``pack_size``/``packed_*`` keys are the largest.

- (b) with ``train.precision bf16`` where the device has native bfloat16 (same rounds), and its
  ratio to (b).

Also: the PGD/FGSM cost ratio of (b), peak memory (``torch.cuda.max_memory_allocated`` on GPU,
``ru_maxrss`` of the process on CPU), the time of the MNIST evaluation protocol (100 images x 10
trials x 3 lambdas x 2 attacks, via radae.evaluate) and of FID on 10,000 samples (via radae.fid);
each of the last two is skipped with a printed note when its module is missing. ``--quick``
shrinks step counts and the evaluation (the table says so). Steps are timed in alternating
rounds (a, b, c, a, b, c, ...) and the median round is reported; on the CPU the clock is this
process's CPU time (single-threaded runs), so neighbours' load on a shared machine does not
count, and denormals are flushed to zero (``torch.set_flush_denormal``) for every row.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from radae.config import RunConfig, apply_overrides
from radae.data import DatasetInfo, Split, Splits, load_dataset
from radae.fast import PackConfig, PackedGraph, PackedModels
from radae.losses import adversarial_ks_loss, coupled_cov_loss
from radae.models import create_model
from radae.precision import bf16_supported
from radae.prior import GMMPrior
from radae.trainsteps import make_optimizer, make_train_step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load_data(device: torch.device) -> tuple[Splits, str]:
    """Real MNIST when a local copy exists (no download), else random images of its shape."""
    try:
        data = load_dataset(apply_overrides(RunConfig(), {"data.name": "mnist", "data.download": False}).data)
        return data.to(device), f"real MNIST ({data.source})"
    except ValueError as err:
        g = torch.Generator().manual_seed(0)

        def split(n: int) -> Split:
            return Split(
                torch.randint(0, 256, (n, 1, 32, 32), generator=g, dtype=torch.uint8),
                torch.randint(0, 10, (n,), generator=g),
            )

        info = DatasetInfo("mnist", (1, 32, 32), 10)
        note = f"random uint8 tensors shaped like MNIST (no local MNIST: {str(err).splitlines()[0]})"
        return Splits(split(6000), split(1000), split(1000), info, "random").to(device), note


def base_config(device: torch.device) -> RunConfig:
    return apply_overrides(RunConfig(), {"data.name": "mnist", "train.device": str(device), "loss.weight_batches": 10})


# (a) the plain PyTorch reference loop --------------------------------------------------------


def plain_runner(cfg: RunConfig, data: Splits, device: torch.device, batch: int):
    """A hand-written loop: DataLoader, eager FGSM step, KS/CV losses; returns ``run(steps)``."""
    torch.manual_seed(0)
    pixels, d = 32 * 32, cfg.model.latent_dim

    def mlp(sizes: list[int]) -> list[nn.Module]:
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()]
        return layers[:-1]

    enc = nn.Sequential(nn.Flatten(), *mlp([pixels, 200, 200, 200, 200, d])).to(device)
    dec = nn.Sequential(*mlp([d, 200, 200, 200, 200, pixels]), nn.Sigmoid(), nn.Unflatten(1, (1, 32, 32))).to(device)
    prior = GMMPrior.create(cfg.prior.num_modes, d, device=device)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=cfg.train.lr)
    dataset = torch.utils.data.TensorDataset(data.train.float().cpu())
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True)
    eps, a = cfg.adv.eps, cfg.adv.step_size
    state = {"it": iter(loader)}

    def step(x: torch.Tensor) -> None:
        with torch.no_grad():
            z0 = enc(x)
        delta = ((x + (2 * torch.rand_like(x) - 1) * eps).clamp(0, 1) - x).requires_grad_(True)
        (grad,) = torch.autograd.grad((enc(x + delta) - z0).pow(2).sum(), delta)
        x_adv = (x + (delta.detach() + a * grad.sign()).clamp(-eps, eps)).clamp(0, 1)
        z, z_adv = enc(torch.cat([x, x_adv])).chunk(2)
        rec = F.mse_loss(dec(z + 0.1 * torch.randn_like(z)), x)
        loss = 500 * rec + adversarial_ks_loss(z, z_adv, prior) + coupled_cov_loss(z, z_adv, prior, 0.95)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def run(steps: int) -> None:
        for _ in range(steps):
            try:
                (x,) = next(state["it"])
            except StopIteration:
                state["it"] = iter(loader)
                (x,) = next(state["it"])
            step(x.to(device, non_blocking=True))

    return run


# (b) radae's single-trial step and (c) packed trials ------------------------------------------


def radae_runner(cfg: RunConfig, data: Splits, device: torch.device, batch: int):
    """radae's trainer step (graph on CUDA, eager on CPU) over device-resident data."""
    torch.manual_seed(0)
    model = create_model(cfg, data.info.image_shape).to(device)
    step = make_train_step(model, make_optimizer(model, cfg), cfg, device)
    gen = torch.Generator(device=device).manual_seed(1)
    perm_gen = torch.Generator(device=device).manual_seed(0)
    n = len(data.train)

    def run(steps: int) -> None:
        perm = torch.randperm(n, generator=perm_gen, device=device)
        for i in range(steps):
            j = (i * batch) % (n - batch + 1)
            step(data.train.get(perm[j : j + batch]), gen)

    return run


def packed_runner(cfg: RunConfig, data: Splits, device: torch.device, batch: int, size: int):
    """``size`` trials (alpha and K varied) trained together with vmap; one call = one step of each."""
    cfgs, models = [], []
    for m in range(size):
        over = {
            "loss.alpha": 0.9 + 0.1 * (m % 5) / 5,
            "prior.num_modes": 5 + m % 6,
            "train.seed": m,
            "train.out_dir": f"runs/bench/{m}",
        }
        cfgs.append(apply_overrides(cfg, over))
        torch.manual_seed(m)
        models.append(create_model(cfgs[-1], data.info.image_shape).to(device))
    pm = PackedModels(models, cfgs, [c.train.lr for c in cfgs], PackConfig(size=size, noise="shared"))
    gens = [torch.Generator(device=device).manual_seed(1)]
    n = len(data.train)
    perm_gen = torch.Generator(device=device).manual_seed(0)
    shape = tuple(data.info.image_shape)

    graphed: list[PackedGraph] = []

    def run(steps: int) -> None:
        for _ in range(steps):
            idx = torch.randint(n, (size * batch,), generator=perm_gen, device=device)
            x = data.train.get(idx).view(size, batch, *shape)
            if device.type != "cuda":
                pm.step(x, pm.draw(gens, batch))
                continue
            if not graphed:
                graphed.append(PackedGraph(pm, gens, x))
            graphed[0](x)

    return run


def clock(device: torch.device):
    """Wall time on GPU; on CPU this process's CPU time, which other processes' load does not inflate
    (the runs are single-threaded and the DataLoader runs in-process, so it counts all the work)."""
    return time.perf_counter if device.type == "cuda" else time.process_time


def rate(run, steps: int, device: torch.device) -> float:
    """Steps per second of ``run(steps)``."""
    now = clock(device)
    sync(device)
    t0 = now()
    run(steps)
    sync(device)
    return steps / (now() - t0)


# evaluation protocol and FID ---------------------------------------------------------------------


def time_evaluation(cfg: RunConfig, data: Splits, device: torch.device, quick: bool) -> tuple[float | None, str]:
    """Wall time of radae.evaluate's attack protocol (both attacks, every lambda and trial, metrics).

    FID and the downstream latent classifier are switched off here (FID is timed on its own)."""
    try:
        from radae.evaluate import evaluate
    except ImportError as err:
        return None, f"skipped: radae.evaluate not available ({err})"
    ev = {"eval.images": 100, "eval.trials": 10, "eval.levels": (1.0, 3.0, 5.0)}
    if quick:
        ev = {"eval.images": 4, "eval.trials": 2, "eval.levels": (1.0, 3.0, 5.0), "eval.attack_steps": 10}
    cfg = apply_overrides(cfg, {**ev, "eval.fid": False, "eval.classifier_epochs": 0})
    torch.manual_seed(0)
    model = create_model(cfg, data.info.image_shape).to(device).eval()
    sync(device)
    t0 = time.perf_counter()
    evaluate(model, data, cfg.eval, device=device, progress=False)
    sync(device)
    e = cfg.eval
    note = f"{e.images} images x {e.trials} trials x {len(e.levels)} lambdas x 2 attacks, {e.attack_steps} steps"
    return time.perf_counter() - t0, note


def time_fid(cfg: RunConfig, data: Splits, device: torch.device, quick: bool) -> tuple[float | None, str]:
    """Wall time of one radae.fid.compute_fid run (generate, features, Frechet distance) against the
    validation images; the cached feature network is built (or found) before the clock starts."""
    try:
        from radae import fid
    except ImportError as err:
        return None, f"skipped: radae.fid not available ({err})"
    n, train = (1000, 2000) if quick else (10000, len(data.train))
    space = fid.classifier_feature_space(
        "mnist", data.train.images[:train].cpu(), data.train.labels[:train].cpu(), 10,
        epochs=1 if quick else cfg.eval.feature_epochs, log=lambda s: None,
    )  # fmt: skip
    torch.manual_seed(0)
    model = create_model(cfg, data.info.image_shape).to(device).eval()
    sync(device)
    t0 = time.perf_counter()
    fid.compute_fid(model, data.val.images, space, samples=n, runs=1, device=device)
    sync(device)
    return time.perf_counter() - t0, f"{n} samples vs {len(data.val)} validation images ({space.metric})"


# The evaluation's stages as radae.evaluate times them (time_<stage>_cpu_s); the attack stages include
# their metrics stage (MS-SSIM, L2 and accuracy of the named pairs).
EVAL_STAGES = (
    "classifier",
    "attack_latent",
    "metrics_latent",
    "attack_max_damage",
    "metrics_max_damage",
    "fid_features",
    "fid",
)


def evaluation_breakdown(
    cfg: RunConfig, data: Splits, device: torch.device, quick: bool, precisions: list[str]
) -> dict[str, Any]:
    """Process CPU time of each stage of the full evaluation protocol (latent classifier, both attacks,
    their MS-SSIM/L2 metrics, FID features and FID), once per ``eval.precision``, same model and protocol.

    The FID feature network is built (or found in its cache) before the clock starts, as a sweep does."""
    from radae.evaluate import classifier_space, evaluate  # noqa: PLC0415  (optional module, as time_evaluation)

    ev: dict[str, Any] = {"eval.images": 100, "eval.trials": 10, "eval.levels": (1.0, 3.0, 5.0)}
    if quick:
        ev = {"eval.images": 4, "eval.trials": 2, "eval.attack_steps": 10, "eval.fid_samples": 500}
        ev |= {"eval.fid_runs": 1, "eval.classifier_epochs": 1, "eval.feature_epochs": 1}
    cfg = apply_overrides(cfg, ev)
    space = classifier_space(data, cfg.eval, log=lambda s: None)
    torch.manual_seed(0)
    model = create_model(cfg, data.info.image_shape).to(device).eval()
    out: dict[str, Any] = {}
    for precision in precisions:
        e = apply_overrides(cfg, {"eval.precision": precision}).eval
        metrics = evaluate(model, data, e, device=device, progress=False, feature_net=space).metrics
        out[precision] = {stage: metrics.get(f"time_{stage}_cpu_s") for stage in EVAL_STAGES}
        out[precision]["total"] = metrics["eval_cpu_s"]
    e = cfg.eval
    out["protocol"] = (
        f"{e.images} images x {e.trials} trials x {len(e.levels)} lambdas x 2 attacks, {e.attack_steps} steps; "
        f"latent MLP {e.classifier_epochs} epochs; FID {e.fid_runs} x {e.fid_samples} samples"
    )
    return out


# main ----------------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
        # Denormal floats (tiny Adam moments, far CDF tails) are ~100x slower on x86 CPUs and
        # appear as training proceeds; flushing them to zero keeps every row's speed stable.
        torch.set_flush_denormal(True)
    data, data_note = load_data(device)
    cfg, batch = base_config(device), 100
    steps, rounds, packs = (args.steps or (5 if args.quick else 100)), (args.rounds or 3), args.pack
    runners = {
        "plain": plain_runner(cfg, data, device, batch),
        "radae": radae_runner(cfg, data, device, batch),
        **{f"packed_x{size}": packed_runner(cfg, data, device, batch, size) for size in packs},
        "radae_pgd": radae_runner(apply_overrides(cfg, {"adv.method": "pgd"}), data, device, batch),
    }
    bf16 = bf16_supported(device)
    if bf16:  # the same step with train.precision bf16, timed in the same alternating rounds
        runners["radae_bf16"] = radae_runner(apply_overrides(cfg, {"train.precision": "bf16"}), data, device, batch)
    for run in runners.values():  # warm-up: allocator, graph capture, lazy state
        run(2)
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            rates[name].append(rate(run, steps, device))
    med = {name: statistics.median(r) for name, r in rates.items()}
    packed = [
        {"pack_size": size, "model_steps_per_s": med[f"packed_x{size}"] * size,
         "ratio_over_plain": med[f"packed_x{size}"] * size / med["plain"]}
        for size in packs
    ]  # fmt: skip
    pack = max(packs)
    eval_s, eval_note = time_evaluation(cfg, data, device, args.quick)
    fid_s, fid_note = time_fid(cfg, data, device, args.quick)
    breakdown = None
    if args.eval_breakdown:
        breakdown = evaluation_breakdown(cfg, data, device, args.quick, ["fp32", "bf16"] if bf16 else ["fp32"])
    return {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "data": data_note,
        "quick": args.quick,
        "timed_steps_per_round": steps,
        "clock": "wall" if device.type == "cuda" else "process CPU time",
        "rounds": rounds,
        "step_mode_radae": "graph" if device.type == "cuda" else "eager",
        "plain_steps_per_s": med["plain"],
        "radae_steps_per_s": med["radae"],
        "pack_size": pack,
        "packed_model_steps_per_s": med[f"packed_x{pack}"] * pack,
        "packed": packed,
        "ratio_radae_over_plain": med["radae"] / med["plain"],
        "ratio_packed_over_plain": med[f"packed_x{pack}"] * pack / med["plain"],
        "pgd_over_fgsm_cost": med["radae"] / med["radae_pgd"],
        "radae_bf16_steps_per_s": med["radae_bf16"] if bf16 else None,
        "ratio_bf16_over_fp32": med["radae_bf16"] / med["radae"] if bf16 else None,
        "bf16": "train.precision bf16" if bf16 else f"skipped: no native bfloat16 on {device}",
        "rounds_steps_per_s": rates,
        "eval_breakdown": breakdown,
        "peak_memory_mb": peak_memory_mb(device),
        "eval_protocol_s": eval_s,
        "eval_protocol": eval_note,
        "fid_s": fid_s,
        "fid": fid_note,
    }


def print_table(r: dict[str, Any]) -> None:
    def fmt(v: float | None, unit: str = "") -> str:
        return "n/a" if v is None else f"{v:,.2f}{unit}"

    lines = [
        f"device: {r['device']}   torch {r['torch']}   data: {r['data']}",
        f"mode: {'quick' if r['quick'] else 'full'}, {r['rounds']} rounds of {r['timed_steps_per_round']} timed steps "
        f"(median; clock: {r['clock']})",
        "",
        f"{'row':<48}{'value':>16}",
        f"{'(a) plain PyTorch loop, steps/s':<48}{fmt(r['plain_steps_per_s']):>16}",
        f"{'(b) radae step (' + r['step_mode_radae'] + '), steps/s':<48}{fmt(r['radae_steps_per_s']):>16}",
        *(
            f"{'(c) packed x' + str(p['pack_size']) + ', model-steps/s':<48}{fmt(p['model_steps_per_s']):>16}"
            for p in r["packed"]
        ),
        f"{'(b)/(a)':<48}{fmt(r['ratio_radae_over_plain'], 'x'):>16}",
        *(
            f"{'(c)/(a) x' + str(p['pack_size']) + ' in model-steps/s':<48}{fmt(p['ratio_over_plain'], 'x'):>16}"
            for p in r["packed"]
        ),
        f"{'PGD/FGSM cost ratio (radae step)':<48}{fmt(r['pgd_over_fgsm_cost'], 'x'):>16}",
        f"{'(b) radae step, train.precision bf16, steps/s':<48}{fmt(r['radae_bf16_steps_per_s']):>16}   {r['bf16']}",
        f"{'(b) bf16 / (b) fp32':<48}{fmt(r['ratio_bf16_over_fp32'], 'x'):>16}",
        f"{'peak memory, MiB':<48}{fmt(r['peak_memory_mb']):>16}",
        f"{'evaluation protocol, s':<48}{fmt(r['eval_protocol_s']):>16}   {r['eval_protocol']}",
        f"{'FID, s':<48}{fmt(r['fid_s']):>16}   {r['fid']}",
    ]
    b = r.get("eval_breakdown")
    if b:
        precisions = [p for p in ("fp32", "bf16") if p in b]
        lines += [
            "",
            f"evaluation, process CPU s ({b['protocol']})",
            f"{'stage':<48}" + "".join(f"{p:>12}" for p in precisions),
        ]
        for stage in (*EVAL_STAGES, "total"):
            cells = "".join(f"{fmt(b[p][stage]):>12}" for p in precisions)
            ratio = ""
            if "bf16" in b and b["fp32"][stage] and b["bf16"][stage]:
                ratio = f"   fp32/bf16 {b['fp32'][stage] / b['bf16'][stage]:.2f}x"
            lines.append(f"{stage:<48}{cells}{ratio}")
    print("\n".join(lines), flush=True)


def pack_sizes(text: str) -> list[int]:
    """``--pack 32,128`` -> [32, 128]: each size >= 1, no repeats."""
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--pack takes comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1 or len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"--pack sizes must be distinct integers >= 1, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small step counts and evaluation (CPU smoke run, CI)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument(
        "--pack",
        type=pack_sizes,
        default=None,
        help="trials per pack for (c), comma-separated for several rows (default 32,128 on GPU, 4 on CPU)",
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps per round (default 100, quick 5)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating timing rounds (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--json", default=None, help="write the results as JSON to this file")
    parser.add_argument(
        "--eval-breakdown",
        action="store_true",
        help="also time every stage of the full evaluation protocol (with FID and the latent MLP) in fp32 and bf16",
    )
    args = parser.parse_args(argv)
    if args.pack is None:
        args.pack = [32, 128] if torch.cuda.is_available() and args.device != "cpu" else [4]
    results = measure(args)
    print_table(results)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
