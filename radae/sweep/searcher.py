"""The sweep's Ray Tune searcher: an Optuna study driven through its ask-and-tell interface.

:class:`OptunaSearcher` is a plain :class:`ray.tune.search.Searcher` that asks an Optuna study
for configurations (``study.ask``) and tells it the outcome (``study.tell``); it uses only the
public APIs of both libraries. Each Tune trial trains one or more *units*, a unit being one Optuna
trial's configuration with a seed index:

- unpacked (``pack_size`` 1): a Tune trial's config is the unit's params;
- packed (``pack_size > 1``, :mod:`radae.sweep.packing`): the config is
  ``{"pack": [params_0, ..., params_k-1]}``, each member its own unit, told its own objective
  (``pack.m<k>.<metric>`` of the trial's final report), so every trained configuration informs the
  sampler. Members after the first are asked with the searched ``shared`` keys (those that fix a
  pack's shapes, e.g. ``adv.method``) enqueued at the first member's values, so the pack is
  packable; TPE samples their other parameters as usual. A grid (GridSampler) gives each member the
  next grid point, so the grid is covered exactly once. The member count is capped at ``total``
  configurations (times the seeds): the last pack may be smaller.
- seeds (a definition's ``seeds: S``, :mod:`radae.sweep.seeds`): one Optuna trial per
  configuration, handed to S units with seed indices 0..S-1 under ``seed``; :class:`SeedGroups`
  tells Optuna once all S ended: COMPLETE with the mean objective over the seeds (per objective in
  pareto mode; each seed's values in the trial's user attribute ``seed_values``), FAIL if any seed
  failed for good, else PRUNED if any was stopped early.

A unit's verdict comes from the trial's final report (:func:`verdict`): it carries ``evaluated``
(objective.FINAL_KEY); a trial that ends without it was stopped early (ASHA) and is told PRUNED,
so half-trained values never reach TPE. Per-epoch results carry no objective and are not told.

Resume: :meth:`OptunaSearcher.save`/``restore`` pickle the study handle (its sampler, with the
GridSampler's grid or TPE's state) and the unit bookkeeping into the Tune experiment, so
``Tuner.restore`` continues where the driver stopped; the trials themselves stay in the study's
SQLite file (``--study-db``).
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from radae.objective import FINAL_KEY, Objective
from radae.store.studies import study_storage
from radae.sweep.packing import PACK_KEY, member_metric, shared_keys
from radae.sweep.seeds import SEED_KEY
from radae.sweep.space import SearchSpace

log = logging.getLogger(__name__)


def verdict(result: dict | None, error: bool, keys: list[str]) -> tuple[Any, list[float] | None]:
    """(Optuna state, objective values) of one trained configuration seed from its final report."""
    import optuna

    values = [(result or {}).get(k) for k in keys]
    if error:
        return optuna.trial.TrialState.FAIL, None
    if not (result or {}).get(FINAL_KEY):
        return optuna.trial.TrialState.PRUNED, None
    if any(v is None for v in values):  # e.g. a pack member that diverged while the others were evaluated
        return optuna.trial.TrialState.FAIL, None
    return optuna.trial.TrialState.COMPLETE, [float(v) for v in values]


class SeedGroups:
    """Hands out (Optuna trial, seed index) units and tells Optuna once per configuration.

    :meth:`add` queues the S units of a new Optuna trial; :meth:`end` records one unit's verdict
    and, with all S in, tells the study: COMPLETE with the per-objective mean over the seeds, FAIL if
    any seed failed, else PRUNED if any was stopped early. Picklable (saved with the searcher).
    """

    def __init__(self, seeds: int) -> None:
        self.seeds = seeds
        self.pending: list[tuple[Any, int]] = []
        self.ended: dict[int, list[tuple[Any, list[float] | None]]] = {}

    def add(self, ot_trial: Any) -> None:
        self.pending.extend((ot_trial, i) for i in range(self.seeds))

    def pop(self) -> tuple[Any, int] | None:
        return self.pending.pop(0) if self.pending else None

    def end(self, study: Any, ot_trial: Any, state: Any, values: list[float] | None) -> None:
        import statistics

        import optuna

        got = self.ended.setdefault(ot_trial.number, [])
        got.append((state, values))
        if len(got) < self.seeds:
            return
        states = [s for s, _ in got]
        told = None
        if optuna.trial.TrialState.FAIL in states:
            state = optuna.trial.TrialState.FAIL
        elif optuna.trial.TrialState.PRUNED in states:
            state = optuna.trial.TrialState.PRUNED
        else:
            state = optuna.trial.TrialState.COMPLETE
            means = [statistics.fmean(v[j] for _, v in got) for j in range(len(got[0][1]))]
            told = means if len(means) > 1 else means[0]
        try:
            if self.seeds > 1:  # each seed's values, beside the mean (optuna-dashboard shows user attributes)
                ot_trial.set_user_attr("seed_values", [v for _, v in got])
            # skip_if_finished: a restored sweep may re-report a seed whose configuration was told.
            study.tell(ot_trial, told, state=state, skip_if_finished=True)
        except Exception as exc:  # e.g. a NaN value; GridSampler's study.stop() once the grid is covered
            # The grid's stop() raises outside study.optimize() after the state was stored: not a problem.
            stored = study.get_trials(deepcopy=False)[ot_trial.number].state
            if stored == state:
                log.info(
                    "Optuna trial %d (%d seeds) stored as %s; Optuna's tell then raised, harmlessly: %s",
                    ot_trial.number,
                    self.seeds,
                    stored.name,
                    exc,
                )
            else:
                log.warning(
                    "Optuna trial %d (%d seeds) is %s, not %s: %s",
                    ot_trial.number,
                    self.seeds,
                    stored.name,
                    state.name,
                    exc,
                )


def _unit_params(ot_trial: Any, index: int, seeds: int) -> dict[str, Any]:
    """A Tune trial's (or pack member's) params: the configuration, plus its seed index when seeded."""
    return {**ot_trial.params, SEED_KEY: index} if seeds > 1 else dict(ot_trial.params)


class OptunaSearcher(Searcher):
    """Ray Tune searcher over an Optuna study (ask and tell): units, packs and seeds of the module docstring.

    ``space``: ``{key: optuna distribution}``; ``total``: configurations to ask in all (None: as
    many as Tune asks for; required when packed); ``shared``: keys a pack's members must share;
    ``grid``: the study samples a grid (no enqueued shared values, the grid decides).
    """

    def __init__(
        self,
        study: Any,
        space: dict[str, Any],
        objective: Objective,
        *,
        seeds: int = 1,
        pack_size: int = 1,
        total: int | None = None,
        shared: Sequence[str] = (),
        grid: bool = False,
    ) -> None:
        super().__init__(metric=objective.searcher_metric, mode=objective.searcher_mode)
        if pack_size > 1 and total is None:
            raise ValueError("a packed searcher needs total (the number of configurations to train)")
        self.study = study
        self.space = dict(space)
        self.metrics = list(objective.metrics)
        self.pack_size, self.total, self.shared, self.grid = pack_size, total, list(shared), grid
        self.groups = SeedGroups(seeds)
        self._units: dict[str, list[tuple[Any, int]]] = {}  # Tune trial id -> its (Optuna trial, seed index) units
        self._completed: set[str] = set()
        self._asked = 0

    @property
    def packed(self) -> bool:
        return self.pack_size > 1

    def _ask(self, leader: Any | None) -> Any:
        """A new Optuna trial; in a pack, one sharing the ``leader``'s shape-fixing params."""
        fixed = {k: leader.params[k] for k in self.shared if k in leader.params} if leader is not None else {}
        if fixed and not self.grid:
            self.study.enqueue_trial(fixed, skip_if_exists=False)
        return self.study.ask(fixed_distributions=self.space)

    def suggest(self, trial_id: str) -> dict | None:
        if trial_id not in self._units:  # asked again (a restored trial): the same units
            count = self.pack_size
            if self.total is not None:
                count = min(count, self.total * self.groups.seeds - self._asked)
                if count <= 0:
                    return Searcher.FINISHED
            units: list[tuple[Any, int]] = []
            while len(units) < count:
                unit = self.groups.pop()
                if unit is None:
                    self.groups.add(self._ask(units[0][0] if units else None))
                    continue
                units.append(unit)
            self._units[trial_id] = units
            self._asked += count
        params = [_unit_params(t, i, self.groups.seeds) for t, i in self._units[trial_id]]
        return {PACK_KEY: params} if self.packed else params[0]

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        return  # per-epoch results carry no objective (it needs the final evaluation)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._units or trial_id in self._completed:
            return  # reported twice (counted once), or not ours
        for k, (ot_trial, _) in enumerate(self._units[trial_id]):
            keys = [member_metric(k, m) for m in self.metrics] if self.packed else self.metrics
            state, values = verdict(result, error, keys)
            if state.name == "PRUNED" and self.groups.seeds == 1:
                log.info("trial %s stopped before its evaluation: recorded in Optuna as PRUNED", trial_id)
            self.groups.end(self.study, ot_trial, state, values)
        self._completed.add(trial_id)

    def get_state(self) -> dict:
        return dict(self.__dict__)

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as out:
            pickle.dump(self.get_state(), out)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as src:
            self.set_state(pickle.load(src))  # noqa: S301 - the file is this searcher's own checkpoint


def build_searcher(
    space: SearchSpace,
    objective: Objective,
    *,
    study_db: str | Path,
    study_name: str,
    seed: int = 0,
    pack_size: int = 1,
    total: int | None = None,
    seeds: int = 1,
) -> OptunaSearcher:
    """The sweep's searcher: Optuna GridSampler for a pure grid, else (multi-objective) TPE.

    The study ``study_name`` in ``study_db`` is created, or loaded when it exists (a resumed sweep).
    ``pack_size > 1`` asks ``total`` configurations in packs; ``seeds > 1`` repeats each
    configuration over that many seeds (:class:`SeedGroups`).
    """
    import optuna

    if space.is_grid:
        sampler: Any = optuna.samplers.GridSampler(space.grid(), seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5)
    directions = ["maximize" if m == "max" else "minimize" for m in objective.modes]
    study = optuna.create_study(
        storage=study_storage(study_db),
        sampler=sampler,
        study_name=study_name,
        directions=directions,
        load_if_exists=True,
    )
    set_metric_names(study, objective)
    return OptunaSearcher(
        study,
        space.optuna_space(),
        objective,
        seeds=seeds,
        pack_size=pack_size,
        total=total,
        shared=shared_keys(space.params) if pack_size > 1 else (),
        grid=space.is_grid,
    )


def set_metric_names(study: Any, objective: Objective) -> None:
    """Name the study's objectives (``score``; ``robustness``, ``fid``) so optuna-dashboard shows them
    instead of "Objective 0" (Optuna marks the call experimental: its warning is silenced)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.set_metric_names(list(objective.metrics))
