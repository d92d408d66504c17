"""Several trials that share an architecture, trained as one: ``torch.func.vmap`` over stacked parameters.

A sweep's trials of the MNIST model differ in hyper-parameters (alpha, modes and their means, the
eq. 9 weights, attack eps and step, lr schedule, seed), not in shapes. Stacking their parameters
along a leading member axis M turns M small steps into one step of M-times-larger kernels; on a
GPU, where one small step is launch-bound, that is where the speed is (128 models at once ran
~4,500 model-steps/s on an H100 against ~100 steps/s for one plain loop).

:class:`PackedModels` holds the stacked parameters, each member's :class:`MemberHyper`, a
:class:`~radae.fast.adam.StackedAdam` (per-member state and lr) and per-member generators.
One :meth:`PackedModels.step` is, for every member m at once:

    grads_m, loss_m = grad_and_value(member_loss)(params_m, hyper_m, x_m, noise_m)
    params_m <- Adam_m(params_m, grads_m)

with ``member_loss`` the model's eq. 9 (:mod:`radae.fast.functional`). With ``noise="member"``
(default) member m draws its noise from its own generator in ``RobustGMMAE.loss``'s order, so
it follows exactly the trajectory it would have in :func:`radae.trainer.train` (up to float
reassociation): packing never changes a trial's result. ``noise="shared"`` draws the whole
pack's noise in one call per tensor from the first member's generator: faster, reproducible
for the pack, but not equal to the member trained alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from radae.config import ConfigError, RunConfig
from radae.fast.adam import StackedAdam
from radae.fast.functional import MemberHyper, Structure, member_loss, submodule_params
from radae.models.rae import RobustGMMAE, StepNoise, draw_noise
from radae.names import check_names
from radae.perturb import schedule

# Fields every member of a pack must share (they fix shapes, step count or the data).
SHARED_FIELDS = (
    "data.name", "data.data_dir", "data.val_size", "data.train_limit", "data.resize", "model.name", "model.arch",
    "model.latent_dim", "adv.method", "loss.adv_rec", "train.batch_size", "train.epochs",
    "train.max_steps_per_epoch", "train.device", "train.step_mode",
)  # fmt: skip


@dataclass(frozen=True)
class PackConfig:
    """How the sweep packs trials (kept here: radae.config belongs to the single-trial run).

    ``size``: trials per pack (1 = no packing); the sweep groups packable configs into chunks of
    at most this many. ``noise``: ``member`` (each trial's own noise stream, results equal to
    training it alone) or ``shared`` (one stream for the pack; fewer kernel launches).
    """

    size: int = 8
    noise: str = "member"

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError(f"pack.size must be >= 1, got {self.size}")
        if self.noise not in ("member", "shared"):
            raise ConfigError(f"pack.noise must be member or shared, got {self.noise!r}")


def check_packable(cfgs: list[RunConfig]) -> None:
    """Raise :class:`ConfigError` naming the first field that keeps ``cfgs`` from one pack (or any
    member's unknown registry name, :func:`radae.names.check_names`)."""
    if not cfgs:
        raise ConfigError("a pack needs at least one config")
    first = cfgs[0].flat()
    for i, cfg in enumerate(cfgs):
        flat = check_names(cfg).flat()
        if flat["train.precision"] != "fp32":
            raise ConfigError(
                f"train.precision {flat['train.precision']!r} is not supported by packed training (member {i}): "
                "the vmapped step runs in fp32 only; train such configs one per process (pack_size 1) or use fp32"
            )
        if flat["model.name"] != "rae":
            raise ConfigError(f"model.name must be rae to pack trials, got {flat['model.name']!r} (member {i})")
        for key in SHARED_FIELDS:
            if flat[key] != first[key]:
                raise ConfigError(
                    f"{key} differs inside a pack: {first[key]!r} (member 0) vs {flat[key]!r} (member {i})"
                )
        if flat["adv.method"] == "pgd" and flat["adv.pgd_steps"] != first["adv.pgd_steps"]:
            raise ConfigError(
                f"adv.pgd_steps differs inside a pack: {first['adv.pgd_steps']} vs {flat['adv.pgd_steps']}"
            )
    dirs = [c.train.out_dir for c in cfgs]
    if len(set(dirs)) != len(dirs):
        raise ConfigError(f"train.out_dir must differ between the members of a pack, got {dirs}")


def structure_of(cfg: RunConfig) -> Structure:
    steps = schedule(cfg.adv)
    return Structure(steps is not None, 0 if steps is None else steps.steps, cfg.loss.adv_rec)


def hyper_of(model: RobustGMMAE, num_modes: int) -> MemberHyper:
    """A built model's eq. 9 settings as tensors; its K modes padded with zero weight to ``num_modes``."""
    means = model.prior_means.detach()
    k, d = means.shape
    device = means.device
    padded = torch.zeros(num_modes, d, device=device, dtype=means.dtype)
    padded[:k] = means
    weights = torch.zeros(num_modes, device=device, dtype=means.dtype)
    weights[:k] = 1.0 / k
    steps = schedule(model.adv)

    def scalar(v: float | torch.Tensor) -> torch.Tensor:
        # Python floats straight to the model's dtype (via float32 they would lose digits).
        if isinstance(v, torch.Tensor):
            return v.detach().to(device=device, dtype=means.dtype).clone()
        return torch.tensor(float(v), device=device, dtype=means.dtype)

    return MemberHyper(
        means=padded, mode_weights=weights, sigma=scalar(model.sigma),
        alpha=scalar(model.alpha), rec_weight=scalar(model.rec_weight), ks_weight=scalar(model.ks_weight),
        ks_coefs=torch.tensor(model.ks_coefs, device=device, dtype=means.dtype),
        cov_weight=scalar(model.cov_weight), latent_noise=scalar(model.latent_noise), eps=scalar(model.adv.eps),
        step_size=scalar(0.0 if steps is None else steps.step_size),
    )  # fmt: skip


class PackedModels:
    """M robust autoencoders of one architecture: stacked parameters, hyper-parameters and Adam state."""

    def __init__(self, models: list[RobustGMMAE], cfgs: list[RunConfig], lrs: list[float], pack: PackConfig):
        check_packable(cfgs)
        for m in models:
            if any(True for _ in m.encoder.buffers()) or any(True for _ in m.decoder.buffers()):
                raise ConfigError(
                    f"model.arch {cfgs[0].model.arch!r} has BatchNorm buffers; packing needs buffer-free nets (mlp)"
                )
        self.template, self.cfgs, self.pack = models[0], cfgs, pack
        self.structure = structure_of(cfgs[0])
        self.names = [name for name, _ in models[0].named_parameters()]
        self.device = next(models[0].parameters()).device
        self.dtype = next(models[0].parameters()).dtype
        self.params = {
            n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).clone() for n in self.names
        }
        k_max = max(m.prior_means.shape[0] for m in models)
        self.hyper = MemberHyper.stack([hyper_of(m, k_max) for m in models])
        self.latent_noise = [float(m.latent_noise) for m in models]
        self.adam = StackedAdam.create(self.params, torch.tensor(lrs, dtype=torch.float64))
        self.image_shape = tuple(models[0].image_shape)
        self.latent_dim = models[0].latent_dim

        def one(params, hyper, x, noise):
            total, parts = member_loss(
                self.template, self.structure, params, MemberHyper(**hyper), x, StepNoise(**noise)
            )
            return total, parts

        self._grad_step = torch.func.vmap(torch.func.grad_and_value(one, has_aux=True))
        self._loss = torch.func.vmap(one)

    def __len__(self) -> int:
        return len(self.cfgs)

    def draw(self, generators: list[torch.Generator], batch: int) -> StepNoise:
        """Each member's noise for one step (``member``), or the pack's from ``generators[0]`` (``shared``)."""
        shape = (batch, *self.image_shape)
        if self.pack.noise == "member":
            st = self.structure
            noises = [
                draw_noise(g, shape, self.latent_dim, st.adversarial, st.adv_rec, ln, self.device, self.dtype)
                for g, ln in zip(generators, self.latent_noise, strict=True)
            ]
            return StepNoise.stack(noises)
        m, g, kw = len(self), generators[0], {"device": self.device, "dtype": self.dtype}
        return StepNoise(
            torch.rand((m, *shape), generator=g, **kw),
            torch.randn(m, batch, self.latent_dim, generator=g, **kw),
            torch.randn(m, batch, self.latent_dim, generator=g, **kw),
        )

    def step(self, x: torch.Tensor, noise: StepNoise) -> dict[str, torch.Tensor]:
        """One training step of every member on its batch ``x[m]`` (M, N, C, H, W); returns (M,) values."""
        grads, (total, parts) = self._grad_step(self.params, self.hyper.as_dict(), x, vars(noise))
        self.adam.update(self.params, grads)
        return {"loss": total.detach(), **parts}

    @torch.no_grad()
    def objective(self, x: torch.Tensor, noise: StepNoise) -> dict[str, torch.Tensor]:
        """The training objective per member on ``x`` (M, N, ...) without updating; plus the clean rec MSE."""
        total, parts = self._loss(self.params, self.hyper.as_dict(), x, vars(noise))
        return {"loss": total, **parts, "rec_mse": self.rec_mse(x)}

    def rec_mse(self, x: torch.Tensor) -> torch.Tensor:
        """Per-member mean squared error of decode(encode(x)) (M,)."""

        def one(params, xm):
            enc, dec = submodule_params(params, "encoder."), submodule_params(params, "decoder.")
            z = torch.func.functional_call(self.template.encoder, enc, (xm,))
            return (torch.func.functional_call(self.template.decoder, dec, (z,)) - xm).pow(2).mean()

        return torch.func.vmap(one)(self.params, x)

    @torch.no_grad()
    def load_into(self, index: int, model: RobustGMMAE) -> RobustGMMAE:
        """Copy member ``index``'s parameters into ``model`` (same architecture) and return it."""
        for name, p in model.named_parameters():
            p.copy_(self.params[name][index])
        return model
