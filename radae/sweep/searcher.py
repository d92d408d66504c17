"""OptunaSearch that records trials stopped early (ASHA) as PRUNED, and builds the searcher.

Ray's OptunaSearch tells Optuna COMPLETE with the last (truncated) result for any trial that
ends without error, including those a scheduler stopped (stack.md), which would poison TPE with
values of half-trained models. A trial's final report carries ``evaluated`` (objective.FINAL_KEY);
a trial that ends without it is told to Optuna as PRUNED (Optuna then keeps its last intermediate
value, as for its own pruners).

:class:`PackedOptunaSearch` serves packed sweeps (``pack_size > 1``, :mod:`radae.sweep.packing`): a
Tune trial's config is ``{"pack": [params_0, ..., params_k-1]}``, each member asked from Optuna as
its own Optuna trial and told its own objective (``pack.m<k>.<metric>`` of the trial's final
report), so every trained configuration informs the sampler.

Seeds (a definition's ``seeds: S``, :mod:`radae.sweep.seeds`): one Optuna trial per
configuration, handed to S Tune trials (or pack members) with seed indices 0..S-1 under
``seed``; :class:`SeedGroups` tells Optuna once all S ended: COMPLETE with the mean objective over
the seeds (per objective in pareto mode), FAIL if any seed failed for good, else PRUNED if any
was stopped early. Intermediate (per-epoch) values of single seeds are not told.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from radae.sweep.objective import FINAL_KEY, Objective
from radae.sweep.packing import PACK_KEY, member_metric
from radae.sweep.seeds import SEED_KEY
from radae.sweep.space import SearchSpace

log = logging.getLogger(__name__)


class PruneAwareOptunaSearch(OptunaSearch):
    """OptunaSearch telling Optuna PRUNED for trials that ended before their final evaluation."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        # Per-epoch results carry training metrics only; the objective exists once evaluated.
        if isinstance(self.metric, str) and self.metric in result:
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if error or not result or result.get(FINAL_KEY):
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        if trial_id in self._completed_trials:
            return
        import optuna

        ot_trial = self._ot_trials[trial_id]
        self._ot_study.tell(ot_trial, None, state=optuna.trial.TrialState.PRUNED)
        self._completed_trials.add(trial_id)
        log.info("trial %s stopped before its evaluation: recorded in Optuna as PRUNED", trial_id)


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
            study.tell(ot_trial, told, state=state)
        except Exception as exc:  # e.g. a NaN value, or told already (a restored sweep re-reports a finished seed)
            log.warning("Optuna trial %d (%d seeds): %s", ot_trial.number, self.seeds, exc)


def _unit_params(ot_trial: Any, index: int, seeds: int) -> dict[str, Any]:
    """A Tune trial's (or pack member's) params: the configuration, plus its seed index when seeded."""
    return {**ot_trial.params, SEED_KEY: index} if seeds > 1 else dict(ot_trial.params)


class SeededOptunaSearch(PruneAwareOptunaSearch):
    """Unpacked sweep with ``seeds > 1``: S Tune trials per Optuna trial (see :class:`SeedGroups`)."""

    def __init__(self, *args: Any, seeds: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.groups = SeedGroups(seeds)
        self._units: dict[str, tuple[Any, int]] = {}

    def suggest(self, trial_id: str) -> dict | None:
        if trial_id not in self._units:
            unit = self.groups.pop()
            if unit is None:
                self.groups.add(self._ot_study.ask(fixed_distributions=self._space))
                unit = self.groups.pop()
            self._units[trial_id] = unit
        ot_trial, index = self._units[trial_id]
        return _unit_params(ot_trial, index, self.groups.seeds)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        return  # one seed's intermediate values are not its configuration's

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._units or trial_id in self._completed_trials:
            return
        ot_trial, _ = self._units[trial_id]
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        self.groups.end(self._ot_study, ot_trial, *verdict(result, error, metrics))
        self._completed_trials.add(trial_id)


class PackedOptunaSearch(PruneAwareOptunaSearch):
    """One Tune trial = up to ``pack_size`` Optuna trials; ``total`` configurations in all.

    Members after the first are asked with the searched ``shared`` keys (those that fix a pack's
    shapes, e.g. ``adv.method``) enqueued at the first member's values, so the pack is packable;
    TPE samples their other parameters as usual. A grid (GridSampler) gives each member the next
    grid point (trial number = grid id), so the grid is covered exactly once. The member count is
    capped at ``total``: the last pack may be smaller.
    """

    def __init__(self, *args: Any, pack_size: int, total: int, shared: list[str], grid: bool, seeds: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pack_size, self.total, self.shared, self.grid = pack_size, total, list(shared), grid
        self.groups = SeedGroups(seeds)
        self._packs: dict[str, list[tuple[Any, int]]] = {}
        self._asked = 0

    def suggest(self, trial_id: str) -> dict | None:
        from ray.tune.search import Searcher

        seeds = self.groups.seeds
        if trial_id not in self._packs:
            count = min(self.pack_size, self.total * seeds - self._asked)
            if count <= 0:
                return Searcher.FINISHED
            units: list[tuple[Any, int]] = []
            while len(units) < count:
                unit = self.groups.pop()
                if unit is None:
                    leader = units[0][0] if units else None
                    fixed = {k: leader.params[k] for k in self.shared if k in leader.params} if leader else {}
                    if fixed and not self.grid:
                        self._ot_study.enqueue_trial(fixed, skip_if_exists=False)
                    self.groups.add(self._ot_study.ask(fixed_distributions=self._space))
                    continue
                units.append(unit)
            self._packs[trial_id] = units
            self._ot_trials[trial_id] = units[0][0]
            self._asked += count
        return {PACK_KEY: [_unit_params(t, i, seeds) for t, i in self._packs[trial_id]]}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self._packs:
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._packs:
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        if trial_id in self._completed_trials:
            return
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        for k, (ot_trial, _) in enumerate(self._packs[trial_id]):
            keys = [member_metric(k, m) for m in metrics]
            self.groups.end(self._ot_study, ot_trial, *verdict(result, error, keys))
        self._completed_trials.add(trial_id)


def study_storage(path: str | Path):
    """Optuna RDB storage in the SQLite file ``path`` (optuna-dashboard opens the same file)."""
    import optuna

    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(f"sqlite:///{path}")


def build_searcher(space: SearchSpace, objective: Objective, *, study_db: str | Path, study_name: str, seed: int = 0,
                   pack_size: int = 1, total: int | None = None, seeds: int = 1):
    """The sweep's searcher: Optuna GridSampler for a pure grid, else (multi-objective) TPE.

    ``pack_size > 1`` gives a :class:`PackedOptunaSearch` asking ``total`` configurations in packs;
    ``seeds > 1`` repeats each configuration over that many seeds (:class:`SeedGroups`).
    """
    import optuna

    if space.is_grid:
        sampler: Any = optuna.samplers.GridSampler(space.grid(), seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5)
    kwargs = dict(space=space.optuna_space(), metric=objective.searcher_metric, mode=objective.searcher_mode,
                  sampler=sampler, storage=study_storage(study_db), study_name=study_name)
    if pack_size > 1:
        from radae.sweep.packing import shared_keys

        if total is None:
            raise ValueError("a packed searcher needs total (the number of configurations to train)")
        return PackedOptunaSearch(pack_size=pack_size, total=total, shared=shared_keys(space.params), grid=space.is_grid,
                                  seeds=seeds, **kwargs)
    if seeds > 1:
        return SeededOptunaSearch(seeds=seeds, **kwargs)
    return PruneAwareOptunaSearch(**kwargs)


def load_study(study_db: str | Path, study_name: str):
    import optuna

    return optuna.load_study(study_name=study_name, storage=study_storage(study_db))
