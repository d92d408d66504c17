"""How a Tune trial holds its configurations: one (``single``) or a pack (``packed``); chosen once, by :func:`shape_of`.

:class:`TrialShape` is the single trial: one configuration trained by :func:`radae.train.train`,
reporting plain metric names. :class:`PackedShape` is what a pack changes in that one path
(:mod:`radae.sweep.trainable`, :func:`radae.sweep.trial.train_and_evaluate`); everything else
(restore, evaluation, final metrics, rows) is the single trial's.

A packed trial holds ``pack_size`` configurations of one architecture (a Tune config
``{"pack": [...]}``). Member ``k`` of Tune trial ``T`` gets the id ``T-m<k>``, its own
``train.out_dir``, its own nested MLflow run (tags ``radae.pack_trial``/``radae.pack_member``) and its
own Parquet row in the schema of an unpacked trial (plus ``pack_trial``, ``pack_member``,
``pack_size``). The members train together (:func:`radae.fast.train_packed`) and report to Ray:

- per epoch: ``m<k>.<metric>`` of every member, ``epoch``, ``pack_live`` and each validation loss
  (``val_loss``, ``val_rec_mse``, ...) = the pack's best (lowest), which an ASHA scheduler uses (a pack is stopped only when
  its best member is unpromising), with one Ray checkpoint holding ``m<k>/checkpoint.pt`` of every
  member;
- at the end: ``m<k>.<metric>`` of every member's final metrics (or ``m<k>.diverged``/``m<k>.error``),
  ``pack.m<k>.<objective metric>`` (told to Optuna per member by
  :class:`radae.sweep.searcher.PackedOptunaSearch`) and, for Tune's own bookkeeping, each objective
  metric's best value over the pack.

A retried pack resumes every member from Ray's checkpoint only (files an earlier attempt wrote
after its last report are dropped, so all members restart from one epoch); a member that diverged
earlier (its checkpoint lags) is not trained again and ends with status ``error``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from radae.config import RunConfig
from radae.fast import PackConfig, train_packed
from radae.objective import FINAL_KEY, Objective
from radae.registry import Registry
from radae.sweep.packing import PACK_KEY, member_ids, member_metric
from radae.sweep.trial import numeric
from radae.train import train

SHAPES: Registry = Registry("trial shape")


class TrialShape:
    """A single trial: one configuration, trained by :func:`radae.train.train`, reporting plain metric names.

    :class:`PackedShape` overrides what differs for a pack.
    """

    def member_params(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The sampled params of each configuration of a Tune trial's config."""
        return [dict(params)]

    def member_ids(self, trial_id: str, count: int) -> list[str]:
        return [trial_id]

    def columns(self, trial_id: str, k: int, count: int) -> dict[str, Any]:
        """Row columns (and, as ``radae.<name>`` tags, MLflow tags) naming member ``k``'s place in the trial."""
        return {}

    def key(self, k: int, name: str) -> str:
        """Member ``k``'s metric ``name`` in the trial's reports to Ray."""
        return name

    def member_report(self, report: Mapping[str, Any], k: int) -> dict[str, Any]:
        """Member ``k``'s own entries of a report (the inverse of :meth:`key`)."""
        prefix = self.key(k, "")
        return {n[len(prefix) :]: v for n, v in report.items() if n.startswith(prefix)}

    def folder(self, k: int) -> str:
        """Member ``k``'s folder in the trial's Ray checkpoints (``""``: the checkpoint's root)."""
        return ""

    def keep_local_checkpoints(self) -> bool:
        """Whether a checkpoint the folder already holds counts when Ray storage has none (or an older one)."""
        return True

    def train(
        self,
        cfgs: list[RunConfig],
        *,
        resume: bool,
        data: Any,
        pack_noise: str,
        on_epoch: Callable[[int, dict[str, Any], str], None],
        after_epoch: Callable[[int], None],
    ) -> list[Any]:
        """Train ``cfgs``; ``on_epoch(member, metrics, checkpoint)`` per member and epoch, then ``after_epoch(epoch)``."""

        def one(metrics: dict[str, Any], checkpoint: str) -> None:
            on_epoch(0, metrics, checkpoint)
            after_epoch(int(metrics["epoch"]))

        (cfg,) = cfgs
        return [train(cfg, resume=resume, on_epoch=one, data=data, progress=False)]

    def epoch_report(self, epoch: int, metrics: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
        """The per-epoch report to Ray of the members that trained this epoch."""
        report: dict[str, Any] = {"epoch": epoch}
        for k, own in metrics.items():
            report.update({self.key(k, n): v for n, v in numeric(own).items()})
        return report

    def final_report(
        self, finals: Sequence[Mapping[str, Any] | None], errors: Mapping[int, str], objective: Objective
    ) -> dict[str, Any]:
        """The trial's final report to Ray: every member's final metrics (or its error)."""
        report: dict[str, Any] = {}
        for k, final in enumerate(finals):
            own = dict(final) if final is not None else {"diverged": 1.0, "error": errors.get(k, "diverged")}
            report.update({self.key(k, n): v for n, v in own.items()})
        return report


class PackedShape(TrialShape):
    """A Tune trial whose config is ``{"pack": [params of member 0, member 1, ...]}``."""

    def member_params(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(p) for p in params[PACK_KEY]]

    def member_ids(self, trial_id: str, count: int) -> list[str]:
        return member_ids(trial_id, count)

    def columns(self, trial_id: str, k: int, count: int) -> dict[str, Any]:
        return {"pack_trial": trial_id, "pack_member": k, "pack_size": count}

    def key(self, k: int, name: str) -> str:
        return f"m{k}.{name}"

    def folder(self, k: int) -> str:
        return f"m{k}/"

    def keep_local_checkpoints(self) -> bool:
        # train_packed needs every member at one epoch: only Ray's checkpoint counts.
        return False

    def train(
        self,
        cfgs: list[RunConfig],
        *,
        resume: bool,
        data: Any,
        pack_noise: str,
        on_epoch: Callable[[int, dict[str, Any], str], None],
        after_epoch: Callable[[int], None],
    ) -> list[Any]:
        return train_packed(
            cfgs,
            resume=resume,
            data=data,
            pack=PackConfig(size=len(cfgs), noise=pack_noise),
            on_epoch=on_epoch,
            after_epoch=after_epoch,
            progress=False,
        )

    def epoch_report(self, epoch: int, metrics: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
        report = {**super().epoch_report(epoch, metrics), "pack_live": float(len(metrics))}
        if metrics:  # every validation loss (val_loss, val_rec_mse, ...) as the pack's best member's, for ASHA
            names = set.intersection(*(set(m) for m in metrics.values()))
            report.update(
                {n: min(float(m[n]) for m in metrics.values()) for n in sorted(names) if n.startswith("val_")}
            )
        return report

    def final_report(
        self, finals: Sequence[Mapping[str, Any] | None], errors: Mapping[int, str], objective: Objective
    ) -> dict[str, Any]:
        return {
            **super().final_report(finals, errors, objective),
            "pack_size": float(len(finals)),
            FINAL_KEY: 1.0,
            **pack_summary(finals, objective),
        }


def pack_summary(finals: Sequence[Mapping[str, Any] | None], objective: Objective) -> dict[str, float]:
    """``pack.m<k>.<metric>`` per evaluated member and each objective metric's best over the pack."""
    metrics = objective.searcher_metric if isinstance(objective.searcher_metric, list) else [objective.searcher_metric]
    modes = objective.searcher_mode if isinstance(objective.searcher_mode, list) else [objective.searcher_mode]
    out: dict[str, float] = {}
    for name, mode in zip(metrics, modes, strict=True):
        values = []
        for k, final in enumerate(finals):
            if final is not None and name in final:
                out[member_metric(k, name)] = float(final[name])
                values.append(float(final[name]))
        if values:
            out[name] = max(values) if mode == "max" else min(values)
    return out


SHAPES.register("single")(TrialShape())
SHAPES.register("packed")(PackedShape())


def shape_of(params: Mapping[str, Any]) -> tuple[str, TrialShape]:
    """The one place a Tune trial's config decides between a single and a packed trial: (name, shape)."""
    name = "packed" if PACK_KEY in params else "single"
    return name, SHAPES.get(name)
