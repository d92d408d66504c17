"""Training-step implementations by name (``train.step_mode``): ``STEP_MODES[mode](model, optimizer)``.

    from radae.trainsteps import make_optimizer, make_train_step
    optimizer = make_optimizer(model, cfg)                   # Adam, fused where the device has it
    step = make_train_step(model, optimizer, cfg, device)    # STEP_MODES[cfg.train.step_mode]
    values = step(x, generator)                              # {"loss": total, **parts}

A step factory takes ``(model, optimizer)`` and returns ``step(x, generator) -> dict`` that runs
one optimisation step on the batch ``x`` and returns the scalar tensors ``{"loss": total,
**parts}`` (detached; the trainer checks them for NaN/inf and averages them per epoch).

- ``eager``: plain PyTorch (zero_grad, ``model.loss``, backward, ``optimizer.step``).
- ``graph``: the same step captured whole in one CUDA graph (:class:`GraphStep`).
- ``auto``: ``graph`` on CUDA, otherwise ``eager``.

The graph step. One step is ``model.loss(x, generator)`` (the adversarial perturbation, the
losses), backward and ``optimizer.step()``. The models are small, so on a GPU the eager step is
bound by kernel launches (~100 steps/s measured on an H100); replaying
the whole step as one CUDA graph removes the launch cost (~1,000 steps/s there). The capture
follows the PyTorch CUDA-graph recipe for a whole training step (torch.cuda.graphs docs,
"Whole-network capture"):

1. Static input: ``x`` is copied into a fixed buffer before each replay (a batch of another
   shape runs eagerly on the same tensors instead).
2. The optimizer is made capturable (``capturable=True``: its step counters live on the
   device). A float lr is baked into the captured kernels, so when a scheduler changes it
   (``ReduceLROnPlateau`` sets floats) the step re-captures (warm-up and capture: well under a
   second, a few times per run); an lr given as a device tensor is read by the graph and needs
   no re-capture. The trainer's metrics and checkpoints keep seeing plain float lrs.
3. Warm-up steps run on a side stream (they create the optimizer state and the autograd and
   cuBLAS workspaces), then the parameters, buffers, optimizer state and generator are restored
   to their values before the warm-up, so the first replay is the first step: graph and eager
   runs start identically.
4. The training generator is registered with the graph (``CUDAGraph.register_generator_state``):
   each replay draws fresh numbers from it, advancing its offset exactly as the eager step would.
   The step is bound to the generator of its first call; another generator raises.
5. Gradients are set to None before capture, so backward writes into graph-owned ``.grad``
   tensors; nothing calls ``zero_grad`` between replays (backward overwrites them).

The loss must not synchronise with the host (no ``.item()``/``float()`` on device tensors inside
``loss``); :class:`radae.models.rae.RobustGMMAE` satisfies this. Returned tensors are copies,
safe to keep across later replays. The packed trainer's graph (a pack's whole vmapped step) is
:class:`radae.fast.packed_train.PackedGraph`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from radae.config import ConfigError, RunConfig
from radae.models import Autoencoder
from radae.precision import network_precision
from radae.registry import Registry

Step = Callable[[torch.Tensor, "torch.Generator | None"], dict[str, torch.Tensor]]
STEP_MODES: Registry = Registry("training step mode")


@STEP_MODES.register("eager")
def eager_step(model: Autoencoder, optimizer: torch.optim.Optimizer) -> Step:
    """One plain PyTorch optimisation step per call."""

    def step(x: torch.Tensor, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        optimizer.zero_grad(set_to_none=True)
        out = model.loss(x, generator)
        out.total.backward()
        optimizer.step()
        return {"loss": out.total.detach(), **{k: v.detach() for k, v in out.parts.items()}}

    return step


def resolve_step_mode(mode: str, device: torch.device) -> str:
    """The registered step mode to use: ``auto`` picks ``graph`` on CUDA, else ``eager``."""
    if mode == "auto":
        return "graph" if device.type == "cuda" else "eager"
    if mode not in STEP_MODES:
        raise ConfigError(
            f"train.step_mode {mode!r} is not available here; available: {', '.join(STEP_MODES.names())}, auto"
        )
    if mode == "graph" and device.type != "cuda":
        raise ConfigError(f"train.step_mode graph needs a CUDA device, got {device}; use eager or auto")
    return mode


# Device types radae runs Adam's fused kernel on: torch documents fused Adam for CUDA and, since 2.4, CPU
# (torch.optim.Adam, ``fused``); other devices keep the default implementation.
FUSED_ADAM_DEVICES = frozenset({"cuda", "cpu"})


def make_optimizer(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.Adam:
    """The trainer's Adam (lr ``train.lr``) with the fused kernel where the device has one.

    Fused Adam is one kernel per step instead of several per tensor: ~3x faster updates on the
    CPU (0.75 ms against 2.3 ms for the MNIST MLP, measured here), which is ~9% of a CPU training
    step, and graph-capturable on CUDA. Same update formula as the default implementation (results
    differ by float reassociation only).
    """
    device = next(model.parameters()).device
    fused = device.type in FUSED_ADAM_DEVICES
    return torch.optim.Adam(model.parameters(), lr=cfg.train.lr, fused=fused or None)


def make_train_step(
    model: Autoencoder, optimizer: torch.optim.Optimizer, cfg: RunConfig, device: torch.device | str
) -> Step:
    """The step of ``cfg.train.step_mode`` (``auto``: graph on CUDA, else eager): ``step(x, generator) -> dict``.

    With ``train.precision`` bf16 every call runs inside :func:`radae.precision.network_precision`
    (the networks' forwards under autocast, losses and Adam in float32); a graph step captures
    the autocast kernels on its first call.
    """
    step = STEP_MODES.get(resolve_step_mode(cfg.train.step_mode, torch.device(device)))(model, optimizer)
    if cfg.train.precision == "fp32":
        return step

    def step_at_precision(x: torch.Tensor, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        with network_precision(model, cfg.train.precision, device):
            return step(x, generator)

    return step_at_precision


def make_capturable(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Switch ``optimizer`` to capturable mode (device step counters)."""
    for group in optimizer.param_groups:
        if "capturable" not in group:
            raise ConfigError(
                f"train.step_mode graph needs a capturable optimizer (e.g. Adam), got {type(optimizer).__name__}"
            )
        group["capturable"] = True
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "step" in state and state["step"].device != p.device:
                state["step"] = state["step"].to(p.device, torch.float32)


def _lr_key(optimizer: torch.optim.Optimizer) -> tuple:
    """What a capture fixes about the lrs: float values (tensor lrs are read at replay)."""
    return tuple(id(g["lr"]) if isinstance(g["lr"], torch.Tensor) else float(g["lr"]) for g in optimizer.param_groups)


class _Snapshot:
    """Values of the model, optimizer state and generator, restorable in place (static addresses)."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator):
        self.model, self.optimizer, self.generator = model, optimizer, generator
        self.module = {id(t): t.detach().clone() for t in self._module_tensors()}
        self.optim = {id(t): t.detach().clone() for t in self._optim_tensors()}
        self.gen = generator.get_state()

    def _module_tensors(self) -> list[torch.Tensor]:
        return [*self.model.parameters(), *self.model.buffers()]

    def _optim_tensors(self) -> list[torch.Tensor]:
        return [t for s in self.optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]

    @torch.no_grad()
    def restore(self) -> None:
        for t in self._module_tensors():
            t.copy_(self.module[id(t)])
        for t in self._optim_tensors():
            # State the warm-up created (a fresh Adam's moments and step) starts at zero.
            saved = self.optim.get(id(t))
            t.copy_(saved) if saved is not None else t.zero_()
        self.generator.set_state(self.gen)


class GraphStep:
    """``model.loss`` + backward + ``optimizer.step`` captured once on ``example``'s shape, replayed per call."""

    def __init__(
        self,
        model: Autoencoder,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        example: torch.Tensor,
        warmup: int = 3,
    ):
        if example.device.type != "cuda" or generator.device.type != "cuda":
            raise ConfigError(
                f"train.step_mode graph needs the batch and generator on CUDA, got {example.device} and {generator.device}"
            )
        self.model, self.optimizer, self.generator, self.warmup = model, optimizer, generator, warmup
        self.eager = eager_step(model, optimizer)
        make_capturable(optimizer, example.device)
        self.static_x = example.detach().clone()
        self.captures = 0
        self._capture()

    def _capture(self) -> None:
        model, optimizer, generator = self.model, self.optimizer, self.generator
        snapshot = _Snapshot(model, optimizer, generator)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.eager(self.static_x, generator)
        torch.cuda.current_stream().wait_stream(side)
        snapshot.restore()
        self.graph = torch.cuda.CUDAGraph()
        self.graph.register_generator_state(generator)
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            out = model.loss(self.static_x, generator)
            out.total.backward()
            optimizer.step()
        self.static_out = {"loss": out.total.detach(), **{k: v.detach() for k, v in out.parts.items()}}
        self.lr_key = _lr_key(optimizer)
        self.captures += 1

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        if generator is not self.generator:
            raise ValueError("a graph step replays the generator it was captured with; pass that same generator")
        if x.shape != self.static_x.shape or x.dtype != self.static_x.dtype:
            return self.eager(x, generator)  # e.g. a last, smaller batch: same tensors, no graph
        if _lr_key(self.optimizer) != self.lr_key:
            self._capture()  # a scheduler changed a float lr
        self.static_x.copy_(x, non_blocking=True)
        self.graph.replay()
        return {k: v.clone() for k, v in self.static_out.items()}


@STEP_MODES.register("graph")
def graph_step(model: Autoencoder, optimizer: torch.optim.Optimizer) -> Step:
    """The whole step as one CUDA graph, captured on the first call (its batch fixes the shape)."""
    device = next(model.parameters()).device
    if device.type != "cuda":
        raise ConfigError(f"train.step_mode graph needs a CUDA device, got {device}; use eager or auto")
    holder: list[GraphStep] = []

    def step(x: torch.Tensor, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        if generator is None:
            raise ValueError("train.step_mode graph needs an explicit CUDA generator for the step's randomness")
        if not holder:
            holder.append(GraphStep(model, optimizer, generator, x))
        return holder[0](x, generator)

    return step
