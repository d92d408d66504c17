"""MLflow tracking: one parent run per sweep, one nested run per trial.

Runs are found again by tags before they are created (``radae.sweep_id``, ``radae.trial_id``,
``radae.role``), so a retried trial or a resumed sweep logs into the same runs instead of
creating duplicates. Nested runs carry ``mlflow.parentRunId`` (how the MLflow UI nests them).
Params are the trial's resolved config (``cfg.flat()``), scrubbed of credentials; metrics are
logged per epoch (step = epoch) and once at the end; artifacts are the checkpoint, the evaluation
JSON and the attack/sample grids.

Everything goes through ``MlflowClient`` with an explicit run id: no global active run, so the
same code works on the driver, in a Tune trainable and in a Ray Train worker.

While the tracking server is away (killed, restarting) each call is retried with backoff by
:class:`RetryingClient` (MLflow's own HTTP retries are cut to none, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0``
unless set, so the failures reach it), which logs ``MLflow tracking server <url> unreachable
calling <method>: ...; retry k/n in s`` and ``... reachable again after N s``. Calls are idempotent (metrics
carry their timestamp, params and tags their value, artifacts their path) except ``create_run`` and
``create_experiment``, retried only when the request never reached the server (connection refused),
so a run is never created twice. A call still failing after the last attempt raises
:class:`TrackingError`: the trial fails, Ray retries it from its checkpoint and the retried trial finds
its run again by tags and completes it (or ``--resume`` does, for the driver).

Set up for comparing trials in the MLflow 3.17 UI:

- the experiment carries ``mlflow.experimentKind = custom_model_development`` and every link radae
  prints carries ``workflowType=machine_learning`` (the UI's "Model training" switch, whose default
  is "GenAI"), so the experiment opens on its runs table instead of the GenAI overview (traces, tokens);
- a nested run is named by its sampled values and its seed (:func:`run_label`: ``K=10 alpha=0.95 seed=0``),
  the trial id stays in the ``radae.trial_id`` tag;
- :meth:`Tracker.compare_view` stores a shared view of the runs table as the experiment tag
  ``mlflow.sharedViewState.<key>`` (the format the UI's own "Share" button writes): the runs whose
  ``tags.mlflow.parentRunId`` is the sweep's parent run, sorted by the objective (best first), the
  searched params and compared metrics as the first columns. Sorting by a metric (not by date) and
  filtering make the UI list the trials flat, without the collapsed parent run in front (verified
  in chromium with MLflow 3.17.2: nothing to click). The page
  ``#/experiments/<id>/runs?viewStateShareKey=<key>&workflowType=machine_learning`` opens it (tag
  ``radae.compare_url`` on the parent; :func:`compare_url` finds it again for the report);
- the parent run gets the sweep's headline metrics at the end (``score``, ``robustness``, ``fid``, ...:
  each the mean over seeds of the configuration best by it), so its row is not empty either.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Set before mlflow is imported: it starts its telemetry client on import.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow's own HTTP retries would hide an outage for minutes; RetryingClient retries and names it.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from radae.objective import LATENT_KEY, MAXDAMAGE_KEY, level_tag
from radae.store.retry import DEFAULT_POLICY, RetryPolicy, call, chain, outage_of
from radae.store.settings import scrub

# The MLflow experiment of sweeps unless --experiment names another (SweepOptions.experiment).
DEFAULT_EXPERIMENT = "radae-sweeps"

SWEEP_TAG, TRIAL_TAG, ROLE_TAG = "radae.sweep_id", "radae.trial_id", "radae.role"
PARENT_TAG = MLFLOW_PARENT_RUN_ID  # how the MLflow UI nests a run under its parent
SEED_RUN_TAG = "radae.seed"  # a seeded sweep's seed index (radae.sweep.seeds.seed_tags)
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
VIEW_TAG_PREFIX, COMPARE_URL_TAG = "mlflow.sharedViewState.", "radae.compare_url"
# The UI's "Model training" mode (its default is "GenAI", a per-browser setting); links carry it.
WORKFLOW = "workflowType=machine_learning"
# Short names of searched keys in run names; other keys use their last component.
SHORT_NAMES = {"prior.num_modes": "K", "loss.alpha": "alpha", "seed": "seed"}


# Calls that create something: retried only when the request was never sent.
_CREATING = frozenset({"create_run", "create_experiment"})
_REFUSED = re.compile(r"Connection refused|Failed to establish a new connection|NewConnectionError", re.I)
_TRANSIENT = re.compile(
    r"API request to .* failed with (timeout )?exception|error code (429|5\d\d)|"
    r"Connection (refused|reset|aborted)|RemoteDisconnected|Max retries exceeded",
    re.I,
)


class TrackingError(RuntimeError):
    """The MLflow tracking server stayed unreachable; the message names it and the call."""


def mlflow_transient(exc: BaseException) -> bool:
    """Whether an MLflow client error is the server being away (no connection, reset, timeout, 429/5xx)."""
    import requests

    return any(
        isinstance(e, requests.exceptions.ConnectionError | requests.exceptions.Timeout | ConnectionError)
        or _TRANSIENT.search(str(e))
        for e in chain(exc)
    )


def never_sent(exc: BaseException) -> bool:
    """Whether the failed request never reached the server (connection refused): safe to repeat any call."""
    return any(isinstance(e, ConnectionRefusedError) or _REFUSED.search(str(e)) for e in chain(exc))


class RetryingClient:
    """An ``MlflowClient`` whose calls retry with backoff while the tracking server is away (module docstring)."""

    def __init__(self, client: Any, tracking_uri: str, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self._client, self._policy = client, policy
        self._outage = outage_of("MLflow tracking server", tracking_uri)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method
        transient = (lambda e: mlflow_transient(e) and never_sent(e)) if name in _CREATING else mlflow_transient

        def retried(*args: Any, **kwargs: Any) -> Any:
            return call(
                lambda: method(*args, **kwargs),
                outage=self._outage,
                what=f"calling {name}",
                transient=transient,
                error=TrackingError,
                policy=self._policy,
                hint="the call fails; a retried trial or --resume finds its MLflow run again and completes it",
            )

        return retried


class Tracker:
    """MLflow client bound to one tracking URI and experiment (created if missing)."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str = DEFAULT_EXPERIMENT,
        artifact_location: str | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.client = RetryingClient(MlflowClient(tracking_uri=tracking_uri), tracking_uri, policy)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            try:
                self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifact_location)
            except Exception:  # another trial created it first
                found = self.client.get_experiment_by_name(experiment)
                if found is None:
                    raise
        if found is not None:
            self.experiment_id = found.experiment_id
        if found is None or found.tags.get(KIND_TAG) != KIND:
            self.client.set_experiment_tag(self.experiment_id, KIND_TAG, KIND)

    def _find(self, **tags: str) -> str | None:
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs([self.experiment_id], filter_string=query, max_results=2)
        return runs[0].info.run_id if runs else None

    def parent_run(self, sweep_id: str, description: Mapping[str, Any]) -> str:
        """Find or create the sweep's parent run; logs the sweep description as params."""
        run_id = self._find(**{SWEEP_TAG: sweep_id, ROLE_TAG: "sweep"})
        if run_id is None:
            tags = {SWEEP_TAG: sweep_id, ROLE_TAG: "sweep", MLFLOW_RUN_NAME: f"sweep-{sweep_id}"}
            run_id = self.client.create_run(self.experiment_id, tags=tags).info.run_id
            self.log_params(run_id, description)
        else:
            self.client.update_run(run_id, status="RUNNING")
        return run_id

    def trial_run(
        self, parent_id: str, sweep_id: str, trial_id: str, params: Mapping[str, Any], tags: Mapping[str, Any]
    ) -> str:
        """Find or create the trial's nested run under ``parent_id``; logs ``params`` (missing ones on a found run)."""
        run_id = self._find(**{SWEEP_TAG: sweep_id, TRIAL_TAG: trial_id})
        if run_id is None:
            sampled = {k.removeprefix("param."): v for k, v in tags.items() if str(k).startswith("param.")}
            if SEED_RUN_TAG in tags:  # two seeds of one configuration must not share a name
                sampled["seed"] = tags[SEED_RUN_TAG]
            all_tags = {
                SWEEP_TAG: sweep_id,
                TRIAL_TAG: trial_id,
                ROLE_TAG: "trial",
                PARENT_TAG: parent_id,
                MLFLOW_RUN_NAME: run_label(sampled) or f"{sweep_id}-{trial_id}",
            }
            all_tags.update({k: str(v) for k, v in scrub(dict(tags)).items()})
            run_id = self.client.create_run(self.experiment_id, tags=all_tags).info.run_id
            self.log_params(run_id, params)
        else:
            self.client.update_run(run_id, status="RUNNING")
            # An attempt killed between create_run and log_params left the run without (some of)
            # its params: log the missing ones (a param MLflow holds cannot change value).
            have = self.client.get_run(run_id).data.params
            missing = {k: v for k, v in params.items() if str(k) not in have}
            if missing:
                self.log_params(run_id, missing)
        return run_id

    def compare_view(
        self,
        sweep_id: str,
        parent_id: str,
        params: list[str],
        metrics: list[str],
        sort_by: str = "score",
        ascending: bool = False,
    ) -> str:
        """Store the runs-table view of this sweep (see the module docstring): its trials as a flat list
        sorted by ``sort_by`` (the objective; ``ascending`` for a metric to minimise). Returns the page path
        ``#/experiments/<id>/runs?viewStateShareKey=<key>`` (relative to the tracking server) and tags the parent with it."""
        import hashlib
        import json

        columns = [f"params.`{p}`" for p in params] + [f"metrics.`{m}`" for m in metrics]
        # The UI nests children under their parent only when sorted by date with no filter; a metric
        # sort plus the parent filter lists the trials flat (a shared view cannot expand a parent:
        # MLflow drops runsExpanded from shared state).
        state = {
            "searchFilter": f"tags.`{PARENT_TAG}` = '{parent_id}'",
            "orderByKey": f"metrics.`{sort_by}`",
            "orderByAsc": ascending,
            "selectedColumns": columns,
            "columnOrder": columns,
            "runsHiddenMode": "SHOW_ALL",
        }
        value = json.dumps(state)
        key = hashlib.sha256(value.encode()).hexdigest()
        self.client.set_experiment_tag(self.experiment_id, VIEW_TAG_PREFIX + key, value)
        url = f"#/experiments/{self.experiment_id}/runs?viewStateShareKey={key}&{WORKFLOW}"
        self.client.set_tag(parent_id, COMPARE_URL_TAG, url)
        return url

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log ``params``, scrubbed of credentials, as strings. MLflow's client splits them into its
        batches of 100, and the store cuts a value above its 6,000-character limit
        (``MLFLOW_TRUNCATE_LONG_VALUES``, on by default)."""
        clean = scrub(dict(params))
        self.client.log_batch(run_id, params=[Param(str(k), str(v)) for k, v in clean.items()])

    def log_metrics(self, run_id: str, metrics: Mapping[str, Any], step: int = 0) -> None:
        """Log the finite numeric entries of ``metrics`` at ``step`` (MLflow's client splits them into its
        batches of 1,000)."""
        now = int(time.time() * 1000)
        batch = [
            Metric(str(k), float(v), now, int(step))
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
        ]
        self.client.log_batch(run_id, metrics=batch)

    def log_artifacts(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file or a folder (through the tracking server's artifact proxy)."""
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(run_id, str(path), artifact_path)
        elif path.is_file():
            self.client.log_artifact(run_id, str(path), artifact_path)

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def trial_runs(self, sweep_id: str) -> list[Any]:
        """Every nested trial run of ``sweep_id``."""
        query = f"tags.`{SWEEP_TAG}` = '{sweep_id}' and tags.`{ROLE_TAG}` = 'trial'"
        return self.client.search_runs([self.experiment_id], filter_string=query, max_results=10000)


def compare_url(tracker: Tracker, sweep_id: str) -> str | None:
    """The full URL of the sweep's compare view (its parent's ``radae.compare_url`` tag), or None."""
    runs = tracker.client.search_runs(
        [tracker.experiment_id], filter_string=f"tags.`{SWEEP_TAG}` = '{sweep_id}' and tags.`{ROLE_TAG}` = 'sweep'"
    )
    path = runs[0].data.tags.get(COMPARE_URL_TAG) if runs else None
    return f"{tracker.tracking_uri.rstrip('/')}/{path}" if path else None


def run_label(sampled: Mapping[str, Any]) -> str:
    """``K=10 alpha=0.95 seed=0``: a trial's sampled values, searched keys shortened (:data:`SHORT_NAMES`)."""

    def text(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    return " ".join(f"{SHORT_NAMES.get(k, k.rsplit('.', 1)[-1])}={text(v)}" for k, v in sampled.items())


def compared_metrics(levels: Any) -> list[str]:
    """The metrics a user compares first: objective, FIDs, and both MS-SSIMs of both attacks per lambda."""
    out = ["score", "robustness", "robustness_paper", "fid", "fid_classifier_mean", "fid_inception_mean"]
    for lv in levels:
        tag = level_tag(float(lv))
        for template in (LATENT_KEY, MAXDAMAGE_KEY):
            name = template.format(level=tag)
            out += [name, name.replace("_msssim_", "_msssim_paper_", 1)]
    return out
