"""``train_packed``: :func:`radae.trainer.train` for several configs at once, one result per trial.

    from radae.fast import PackConfig, train_packed
    results = train_packed([cfg_a, cfg_b, cfg_c], pack=PackConfig(noise="member"))
    results[1].summary["best_val"]          # trial b's, exactly as train(cfg_b) reports it

Each member keeps what :func:`radae.trainer.train` would give it: initial weights from
``torch.manual_seed(train.seed)``, its own batch order (perm generator, seed) and noise (noise
generator, seed + 1), its own ``ReduceLROnPlateau`` on its own validation loss, and in its own
``train.out_dir`` the same files (``checkpoint.pt`` in the trainer's format, ``metrics.jsonl``,
``config.json``, ``summary.json``, figures). A member's checkpoint resumes in the single-trial
trainer. ``on_epoch(member, metrics, checkpoint_path)`` is called per member after each epoch;
``after_epoch(epoch)`` once after every member's epoch is written (the sweep reports the pack then).

A member whose loss turns non-finite stops (its last good checkpoint stays); the others go on;
its result's ``summary`` has ``status: "diverged"`` and the ``error``. Members that finish have
``status: "ok"``.

With ``train.step_mode`` graph (or auto on CUDA) the pack's whole step runs as one CUDA graph
(:class:`PackedGraph`, the recipe of :class:`radae.trainsteps.GraphStep`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

from radae.config import ConfigError, RunConfig
from radae.fast.packed import PackConfig, PackedModels, check_packable
from radae.models import create_model
from radae.probe import RobustnessProbe, make_probe, probe_metrics
from radae.rng import rng_state, set_rng_state
from radae.runfolder import RunFolder, RunFolderError, TrainResult
from radae.trainer import (
    finish_run,
    full_batches,
    load_data,
    lr_scheduler,
    run_generators,
    steps_per_epoch,
    validate,
    validation_seed,
)
from radae.trainsteps import resolve_step_mode

OnEpoch = Callable[[int, dict[str, Any], str], None]


class _Member:
    """Per-trial bookkeeping: generators, scheduler (on a one-tensor stand-in optimizer), run folder."""

    def __init__(self, cfg: RunConfig, device: torch.device):
        self.cfg = cfg
        self.generators = run_generators(cfg.train.seed, device)
        self.perm, self.noise = self.generators["perm"], self.generators["noise"]
        self.lr_holder = torch.optim.Adam([torch.zeros(1)], lr=cfg.train.lr)
        self.scheduler = lr_scheduler(self.lr_holder, cfg.train)
        self.folder = RunFolder(cfg.train.out_dir)
        self.best_val = math.inf
        self.error: str | None = None

    @property
    def lr(self) -> float:
        return float(self.lr_holder.param_groups[0]["lr"])


def _validate(pm: PackedModels, split: Any, batch: int, seeds: list[int]) -> list[dict[str, float]]:
    """Per member, :func:`radae.trainer.evaluate_objective`'s values (fresh generator seeded ``seed``)."""
    gens = [torch.Generator(device=pm.device).manual_seed(s) for s in seeds]
    batches = 0
    sums: dict[str, torch.Tensor] = {}
    for x in full_batches(split, batch):
        xs = x.unsqueeze(0).expand(len(pm), *x.shape)
        for key, value in pm.objective(xs, pm.draw(gens, len(x))).items():
            sums[key] = sums.get(key, 0.0) + value.detach().float()
        batches += 1
    means = {k: (v / batches).tolist() for k, v in sums.items()}
    return [{k: means[k][m] for k in means} for m in range(len(pm))]


def train_packed(
    cfgs: list[RunConfig],
    *,
    resume: bool = False,
    data: Any = None,
    pack: PackConfig | None = None,
    on_epoch: OnEpoch | None = None,
    progress: bool = True,
    after_epoch: Callable[[int], None] | None = None,
) -> list[TrainResult]:
    """Train every config of one pack together; returns one :class:`TrainResult` per config, in order.

    ``resume=True`` continues every member from its checkpoint (all must exist, at one epoch), as
    :func:`radae.trainer.train` does for one run.
    """
    pack = pack or PackConfig()
    check_packable(cfgs)
    device = validate(cfgs[0])
    mode = resolve_step_mode(cfgs[0].train.step_mode, device)  # validate() refused graph off CUDA
    members = [_Member(cfg, device) for cfg in cfgs]
    states = [mb.folder.check(cfg, resume) for mb, cfg in zip(members, cfgs, strict=True)]
    done = {int(st["epoch"]) for st in states if st is not None}
    if len(done) > 1:
        raise RunFolderError(
            f"the pack's checkpoints stopped at different epochs {sorted(done)}; resume them one by one"
        )
    data = load_data(cfgs[0], device, data)
    models = []
    for cfg, st in zip(cfgs, states, strict=True):
        torch.manual_seed(cfg.train.seed)
        models.append(create_model(cfg, data.info.image_shape).to(device))
        if st is not None:
            models[-1].load_state_dict(st["model"])
    pm = PackedModels(models, cfgs, [c.train.lr for c in cfgs], pack)
    start_epoch, wall_before = (done.pop() + 1 if done else 1), 0.0
    for m, (mb, st) in enumerate(zip(members, states, strict=True)):
        if st is not None:
            pm.adam.load_member(m, st["optimizer"], pm.names)
            mb.scheduler.load_state_dict(st["scheduler"])
            set_rng_state(st["rng"], mb.generators, device)
            mb.best_val = float(st["best_val"])
            wall_before = max(wall_before, float(st.get("wall_seconds", 0.0)))
        mb.folder.start(mb.cfg, st)
    t_cfg = cfgs[0].train
    n_train, batch, size = len(data.train), t_cfg.batch_size, len(cfgs)
    steps = steps_per_epoch(n_train, t_cfg)
    if progress:
        print(
            f"training a pack of {size} on {cfgs[0].data.name} ({steps} steps per epoch) on {device}, {mode} steps",
            flush=True,
        )
    shape = tuple(data.info.image_shape)
    probe = make_probe(cfgs[0].probe, data, device)  # robustness along training, per member (radae/probe.py)
    graphed: PackedGraph | None = None
    t_run = time.perf_counter() - wall_before
    for epoch in range(start_epoch, t_cfg.epochs + 1):
        t0 = time.perf_counter()
        perms = torch.stack([torch.randperm(n_train, generator=mb.perm, device=device) for mb in members])
        rows: list[torch.Tensor] = []
        names: list[str] = []
        for i in range(steps):
            idx = perms[:, i * batch : (i + 1) * batch].reshape(-1)
            x = data.train.get(idx).view(size, batch, *shape)
            if mode == "graph":  # the whole pack step as one CUDA graph, captured on the first batch
                graphed = graphed or PackedGraph(pm, [mb.noise for mb in members], x)
                values = graphed(x)
            else:
                values = pm.step(x, pm.draw([mb.noise for mb in members], batch))
            names = list(values)
            rows.append(torch.stack([v.float() for v in values.values()], dim=1))  # (M, parts)
        train_means = torch.stack(rows).mean(dim=0)  # (M, parts)
        val = _validate(pm, data.val, batch, [validation_seed(c.train.seed) for c in cfgs])
        seconds = time.perf_counter() - t0
        for m, mb in enumerate(members):
            if mb.error is None:
                _end_epoch(
                    m, mb, pm, models[m], names, train_means[m], val[m], epoch, steps, seconds, shape, t_run, probe
                )
                if mb.error is None and on_epoch is not None:
                    on_epoch(m, mb.folder.history[-1], str(mb.folder.checkpoint))
        if after_epoch is not None:
            after_epoch(epoch)
        if progress:
            shown = "  ".join(
                f"[{m}] {mb.folder.history[-1]['val_loss']:.4g}" if mb.error is None else f"[{m}] diverged"
                for m, mb in enumerate(members)
            )
            print(
                f"epoch {epoch}/{t_cfg.epochs}  {seconds:.1f}s  {steps * size / seconds:.1f} model-steps/s  val loss {shown}",
                flush=True,
            )
        if all(mb.error is not None for mb in members):
            break
    wall = time.perf_counter() - t_run
    results = []
    for m, mb in enumerate(members):
        if mb.error is not None:
            summary = {"status": "diverged", "error": mb.error, "epochs": len(mb.folder.history), "device": str(device)}
            results.append(mb.folder.result(summary))
            continue
        model = pm.load_into(m, models[m])
        results.append(
            finish_run(mb.cfg, model, data, mb.folder, device, wall, progress, {"status": "ok", "pack_size": size})
        )
    return results


def _end_epoch(
    m: int, mb: _Member, pm: PackedModels, model: torch.nn.Module, names: list[str], train_row: torch.Tensor,
    val: dict[str, float], epoch: int, steps: int, seconds: float, shape: tuple[int, ...], t_run: float,
    probe: RobustnessProbe | None = None,
) -> None:  # fmt: skip
    """Member ``m``'s scheduler step, metrics line and checkpoint (or its divergence)."""
    train_vals = train_row.tolist()
    bad = [n for n, v in zip(names, train_vals, strict=True) if not math.isfinite(v)]
    bad += [f"val_{k}" for k, v in val.items() if not math.isfinite(v)]
    if bad:
        mb.error = f"non-finite {', '.join(bad)} at epoch {epoch}; stopped (the last good checkpoint is {mb.folder.checkpoint})"
        return
    mb.scheduler.step(val["loss"])
    pm.adam.lr[m] = mb.lr
    mb.best_val = min(mb.best_val, val["loss"])
    metrics = {
        "epoch": epoch,
        **{f"train_{k}": v for k, v in zip(names, train_vals, strict=True)},
        **{f"val_{k}": v for k, v in val.items()},
        "lr": mb.lr,
        "best_val": mb.best_val,
        "steps": steps,
        "epoch_seconds": seconds,
        "steps_per_second": steps / seconds,
        "pack_size": len(pm),
        **probe_metrics(probe, pm.load_into(m, model), epoch),
    }
    mb.folder.save_epoch(
        metrics,
        {
            "config": mb.cfg.to_dict(),
            "image_shape": shape,
            "model": pm.load_into(m, model).state_dict(),
            "optimizer": pm.adam.member_state_dict(m, pm.names, lr=mb.lr),
            "scheduler": mb.scheduler.state_dict(),
            "rng": rng_state(mb.generators, pm.device),
            "best_val": mb.best_val,
            "wall_seconds": time.perf_counter() - t_run,
        },
    )


class PackedGraph:
    """A pack's whole step (noise draws, vmapped eq. 9 gradients, stacked Adam) as one CUDA graph.

    Same recipe as :class:`radae.trainsteps.GraphStep`: a static batch buffer (M, N, C, H, W), warm-up on a side
    stream then a restore of parameters, Adam state and generators, and every member generator
    registered with the graph. ``pm.adam.lr`` is read by the graph, so per-member lr changes
    (``pm.adam.lr[m] = ...``, in place) apply to later replays.
    """

    def __init__(self, pm, generators: list[torch.Generator], example: torch.Tensor, warmup: int = 3):
        if example.device.type != "cuda":
            raise ConfigError(f"train.step_mode graph needs a CUDA device, got {example.device}")
        self.pm, self.generators = pm, generators
        self.static_x = example.detach().clone()
        batch = example.shape[1]
        state = [*pm.params.values(), *pm.adam.exp_avg.values(), *pm.adam.exp_avg_sq.values(), pm.adam.step]
        saved, gen_states = [t.detach().clone() for t in state], [g.get_state() for g in generators]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                pm.step(self.static_x, pm.draw(generators, batch))
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():
            for t, s in zip(state, saved, strict=True):
                t.copy_(s)
        for g, s in zip(generators, gen_states, strict=True):
            g.set_state(s)
        self.graph = torch.cuda.CUDAGraph()
        for g in {id(g): g for g in generators}.values():
            self.graph.register_generator_state(g)
        with torch.cuda.graph(self.graph):
            self.static_out = pm.step(self.static_x, pm.draw(generators, batch))

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape != self.static_x.shape:
            raise ValueError(
                f"a captured pack step takes batches of shape {tuple(self.static_x.shape)}, got {tuple(x.shape)}"
            )
        self.static_x.copy_(x, non_blocking=True)
        self.graph.replay()
        return {k: v.clone() for k, v in self.static_out.items()}
