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
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from radae.sweep.objective import FINAL_KEY, Objective
from radae.sweep.packing import PACK_KEY, member_metric
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


class PackedOptunaSearch(PruneAwareOptunaSearch):
    """One Tune trial = up to ``pack_size`` Optuna trials; ``total`` configurations in all.

    Members after the first are asked with the searched ``shared`` keys (those that fix a pack's
    shapes, e.g. ``adv.method``) enqueued at the first member's values, so the pack is packable;
    TPE samples their other parameters as usual. A grid (GridSampler) gives each member the next
    grid point (trial number = grid id), so the grid is covered exactly once. The member count is
    capped at ``total``: the last pack may be smaller.
    """

    def __init__(self, *args: Any, pack_size: int, total: int, shared: list[str], grid: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pack_size, self.total, self.shared, self.grid = pack_size, total, list(shared), grid
        self._packs: dict[str, list[Any]] = {}
        self._asked = 0

    def suggest(self, trial_id: str) -> dict | None:
        from ray.tune.search import Searcher

        if trial_id not in self._packs:
            count = min(self.pack_size, self.total - self._asked)
            if count <= 0:
                return Searcher.FINISHED
            leader = self._ot_study.ask(fixed_distributions=self._space)
            members = [leader]
            for _ in range(count - 1):
                fixed = {k: leader.params[k] for k in self.shared if k in leader.params}
                if fixed and not self.grid:
                    self._ot_study.enqueue_trial(fixed, skip_if_exists=False)
                members.append(self._ot_study.ask(fixed_distributions=self._space))
            self._packs[trial_id] = members
            self._ot_trials[trial_id] = leader
            self._asked += count
        return {PACK_KEY: [dict(t.params) for t in self._packs[trial_id]]}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self._packs:
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._packs:
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        if trial_id in self._completed_trials:
            return
        import optuna

        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        for k, ot_trial in enumerate(self._packs[trial_id]):
            values = [(result or {}).get(member_metric(k, m)) for m in metrics]
            if error:
                state, told = optuna.trial.TrialState.FAIL, None
            elif not (result or {}).get(FINAL_KEY):
                state, told = optuna.trial.TrialState.PRUNED, None
            elif any(v is None for v in values):  # this member diverged; the others were evaluated
                state, told = optuna.trial.TrialState.FAIL, None
            else:
                state, told = optuna.trial.TrialState.COMPLETE, values if len(values) > 1 else values[0]
            try:
                self._ot_study.tell(ot_trial, told, state=state)
            except Exception as exc:  # e.g. a NaN value
                log.warning("trial %s member %d: %s", trial_id, k, exc)
        self._completed_trials.add(trial_id)


def study_storage(path: str | Path):
    """Optuna RDB storage in the SQLite file ``path`` (optuna-dashboard opens the same file)."""
    import optuna

    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(f"sqlite:///{path}")


def build_searcher(space: SearchSpace, objective: Objective, *, study_db: str | Path, study_name: str, seed: int = 0,
                   pack_size: int = 1, total: int | None = None):
    """The sweep's searcher: Optuna GridSampler for a pure grid, else (multi-objective) TPE.

    ``pack_size > 1`` gives a :class:`PackedOptunaSearch` asking ``total`` configurations in packs.
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
        return PackedOptunaSearch(pack_size=pack_size, total=total, shared=shared_keys(space.params), grid=space.is_grid, **kwargs)
    return PruneAwareOptunaSearch(**kwargs)


def load_study(study_db: str | Path, study_name: str):
    import optuna

    return optuna.load_study(study_name=study_name, storage=study_storage(study_db))
