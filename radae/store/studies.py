"""Where a sweep's Optuna study lives: one SQLite file (``SweepOptions.study_db``), which the searcher
writes, optuna-dashboard serves, and reports link to.

    study_storage(path)                    the RDB storage of that file
    load_study(path, name)                 a study read back (tests, reports)
    study_page(dashboard, path, name)      optuna-dashboard's page of the study
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_STUDY_DB = "~/.radae/optuna.db"


def study_storage(path: str | Path):
    """Optuna RDB storage in the SQLite file ``path`` (optuna-dashboard opens the same file)."""
    import optuna

    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(f"sqlite:///{path}")


def study_page(dashboard: str, study_db: str | Path, study_name: str) -> str:
    """optuna-dashboard's page of study ``study_name`` (``<dashboard>/dashboard/studies/<id>``), the id
    read from the study file; the dashboard's study list when the file does not hold the study."""
    base = dashboard.rstrip("/")
    if Path(study_db).expanduser().is_file():
        try:
            return f"{base}/dashboard/studies/{study_storage(Path(study_db).expanduser()).get_study_id_from_name(study_name)}"
        except KeyError:  # optuna's error for a study the file does not hold
            pass
    return f"{base}/dashboard"


def load_study(study_db: str | Path, study_name: str):
    import optuna

    return optuna.load_study(study_name=study_name, storage=study_storage(study_db))
