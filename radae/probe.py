"""A cheap robustness probe along training: a few fixed test images attacked every ``probe.every`` epochs.

The full evaluation (:mod:`radae.evaluate`) runs once, after the last epoch. The probe follows the
quality-robustness trade-off along training instead: every ``probe.every`` epochs (``ProbeConfig``)
it attacks ``probe.images`` (20) test images, ``probe.trials`` (1) random start each, at every lambda
in ``probe.levels`` (3, 5), with both batched attacks (``ATTACKS.create(name, steps=probe.attack_steps)``)
and scores them with the paper's MS-SSIM (:func:`radae.metrics.ms_ssim_paper`) and the standard one.
The images, targets and starts are drawn once from ``probe.seed`` (a fixed generator re-seeded every
probe), so the values of different epochs, seeds and configurations differ only by the model.

Metrics (added to the epoch's ``metrics.jsonl`` line, hence to MLflow and the sweep's per-epoch report)::

    probe_clean_msssim_paper_x_recx            MS-SSIM(x, rec x), clean reconstruction (higher = better)
    probe_latent_msssim_paper_xt_recxa_l<lam>  MS-SSIM(x_t, rec x_a), latent attack (lower = more robust)
    probe_max_damage_msssim_paper_recx_recxa_l<lam>  MS-SSIM(rec x, rec x_a) (higher = more robust)
    probe_robustness_paper, probe_robustness   R of radae/objective.py over probe.levels, paper's
                                               and standard MS-SSIM: mean over lambda of
                                               (maxdamage + 1 - latent) / 2 (higher = more robust)
    probe_seconds, probe_cpu_seconds           the probe's wall and process CPU time

``probe_clean_msssim_x_recx`` and the other standard-MS-SSIM names are there too. With 20 images
and one start these are noisy estimates (a few hundredths): a curve to watch and a scheduler metric
(e.g. ASHA on ``probe_robustness``), not the numbers of the final evaluation.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from radae.attack_inputs import frozen, pick_images
from radae.attacks import ATTACKS
from radae.config import ProbeConfig
from radae.metrics import ms_ssim, ms_ssim_paper
from radae.objective import level_tag, robustness

PREFIX = "probe_"
# Per-image metric name -> function; both MS-SSIMs (the objective's R uses the standard one).
METRICS = {"msssim_paper": ms_ssim_paper, "msssim": ms_ssim}
# What each attack's MS-SSIM compares: (first image, second image) of its pair.
PAIRS = {"latent": ("xt", "recxa"), "max_damage": ("recx", "recxa")}


class RobustnessProbe:
    """The probe of one run: fixed images, targets and starts; call it with the model to get its metrics."""

    def __init__(self, cfg: ProbeConfig, data: Any, device: torch.device | str = "cpu") -> None:
        if cfg.images > len(data.test):
            raise ValueError(f"probe.images asks for {cfg.images} test images but the test split has {len(data.test)}")
        self.cfg = cfg
        idx, targets = pick_images(data.test.labels, cfg.images, cfg.seed, by_class=data.info.class_targets)
        self.x = data.test.get(idx.to(data.test.device)).to(device)
        self.xt = data.test.get(targets.to(data.test.device)).to(device)
        self.attacks = {name: ATTACKS.create(name, steps=cfg.attack_steps) for name in PAIRS}

    def due(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (1-based) is probed: every ``probe.every`` epochs, never when it is 0."""
        return self.cfg.every > 0 and epoch % self.cfg.every == 0

    def __call__(self, model: Any) -> dict[str, float]:
        """The probe's metrics for ``model`` (eval mode, no parameter gradients, flags restored after)."""
        wall, cpu = time.perf_counter(), time.process_time()
        cfg, out = self.cfg, {}
        with frozen(model):
            with torch.no_grad():
                recx = model.reconstruct(self.x)
            for metric, fn in METRICS.items():
                out[f"{PREFIX}clean_{metric}_x_recx"] = float(fn(self.x, recx).mean())
            for name, attack in self.attacks.items():
                generator = torch.Generator().manual_seed(cfg.seed + 1)  # the same starts every probe
                res = attack.run(model, self.x, cfg.levels, cfg.trials, targets=self.xt, generator=generator)
                ii = res.image_index.to(self.x.device)
                with torch.no_grad():
                    images = {"xt": self.xt[ii], "recx": recx[ii], "recxa": model.reconstruct(res.x_adv)}
                first, second = (images[k] for k in PAIRS[name])
                for li, level in enumerate(cfg.levels):
                    sel = (res.level_index == li).to(self.x.device)
                    for metric, fn in METRICS.items():
                        key = f"{PREFIX}{name}_{metric}_{'_'.join(PAIRS[name])}_l{level_tag(level)}"
                        out[key] = float(fn(first[sel], second[sel]).mean())
        for metric, suffix in (("msssim_paper", "_paper"), ("msssim", "")):
            out[f"{PREFIX}robustness{suffix}"] = robustness(
                out,
                cfg.levels,
                latent_key=f"{PREFIX}latent_{metric}_xt_recxa_l{{level}}",
                maxdamage_key=f"{PREFIX}max_damage_{metric}_recx_recxa_l{{level}}",
            )
        out[f"{PREFIX}seconds"] = time.perf_counter() - wall
        out[f"{PREFIX}cpu_seconds"] = time.process_time() - cpu
        return out


def make_probe(cfg: ProbeConfig, data: Any, device: torch.device | str = "cpu") -> RobustnessProbe | None:
    """The run's probe, or None when ``probe.every`` is 0."""
    return RobustnessProbe(cfg, data, device) if cfg.every > 0 else None


def probe_metrics(probe: RobustnessProbe | None, model: Any, epoch: int) -> dict[str, float]:
    """The probe's metrics at ``epoch`` when it is due, else none (the trainer's per-epoch hook)."""
    return probe(model) if probe is not None and probe.due(epoch) else {}
