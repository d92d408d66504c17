"""OptunaSearch that records trials stopped early (ASHA) as PRUNED, and builds the searcher.

Ray's OptunaSearch tells Optuna COMPLETE with the last (truncated) result for any trial that
ends without error, including those a scheduler stopped (stack.md), which would poison TPE with
values of half-trained models. A trial's final report carries ``evaluated`` (objective.FINAL_KEY);
a trial that ends without it is told to Optuna as PRUNED (Optuna then keeps its last intermediate
value, as for its own pruners).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from radae.sweep.objective import FINAL_KEY, Objective
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


def study_storage(path: str | Path):
    """Optuna RDB storage in the SQLite file ``path`` (optuna-dashboard opens the same file)."""
    import optuna

    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(f"sqlite:///{path}")


def build_searcher(space: SearchSpace, objective: Objective, *, study_db: str | Path, study_name: str, seed: int = 0):
    """The sweep's searcher: Optuna GridSampler for a pure grid, else (multi-objective) TPE."""
    import optuna

    if space.is_grid:
        sampler: Any = optuna.samplers.GridSampler(space.grid(), seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5)
    return PruneAwareOptunaSearch(
        space=space.optuna_space(),
        metric=objective.searcher_metric,
        mode=objective.searcher_mode,
        sampler=sampler,
        storage=study_storage(study_db),
        study_name=study_name,
    )


def load_study(study_db: str | Path, study_name: str):
    import optuna

    return optuna.load_study(study_name=study_name, storage=study_storage(study_db))
