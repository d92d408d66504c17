"""Checks run before any trial starts: each bad input gets one clear message.

:func:`preflight` checks, with short timeouts, in this order: the sweep definition (already
validated by :func:`radae.sweep.definition.load_definition`: unknown keys, impossible ranges), the
S3 endpoint (reachable), the bucket (exists, readable with these credentials), the MLflow tracking
server (answers ``/health``), and the Ray address (the dashboard or GCS port answers). It raises
:class:`PreflightError` listing every problem found.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

from radae.config import RunConfig
from radae.data.sources import resolve_folder
from radae.store.settings import StorageSettings, scrub


class PreflightError(RuntimeError):
    """The sweep cannot start; the message lists each problem."""


def check_storage(settings: StorageSettings, timeout: float = 5.0) -> str | None:
    """None when the bucket answers, else why not (endpoint unreachable, bucket missing, denied)."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    if settings.endpoint:
        url = urlparse(settings.endpoint)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            socket.create_connection((url.hostname, port), timeout=timeout).close()
        except OSError as exc:
            return (
                f"S3 endpoint {settings.endpoint} is unreachable ({exc.strerror or exc}); if the local stack's S3 server "
                "stopped while the rest runs, restart only it: python -m cluster.stack restart s3 --state-dir .stack "
                "(its objects are kept on disk); with no stack, start one "
                "(cluster/start_stack.sh); or fix --endpoint / RADAE_S3_ENDPOINT"
            )
    try:
        settings.boto3_client(timeout).head_bucket(Bucket=settings.bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket", "NotFound"):
            return f"S3 bucket {settings.bucket!r} does not exist at {settings.endpoint or 'aws'}; create it (cluster/start_stack.sh does) or fix --bucket / RADAE_S3_BUCKET"
        if code in ("403", "AccessDenied", "Forbidden"):
            return f"S3 bucket {settings.bucket!r}: access denied; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        return f"S3 bucket {settings.bucket!r}: {scrub(str(exc), settings.secrets())}"
    except (EndpointConnectionError, BotoCoreError) as exc:
        return f"S3 endpoint {settings.endpoint or 'aws'} did not answer: {scrub(str(exc), settings.secrets())}"
    return None


def data_folder(base: RunConfig, dataset_names: Sequence[str] = ()) -> str | None:
    """The dataset folder every trial will read, checked before any service is contacted.

    A ``data.data_dir`` the user named must hold each dataset the sweep trains on (``base``'s and
    ``dataset_names``, the searched ``data.name`` values): otherwise :class:`radae.data.DataError`
    names it and nothing starts. Without one: the folder the search order finds for ``base``'s single
    dataset (the driver pins it, so every trial reads, and every row records, that copy), or None
    (several datasets, or only a download would find it: each trial searches on its own).
    """
    names = list(dict.fromkeys([base.data.name, *dataset_names]))
    if base.data.data_dir:
        for name in names:
            resolve_folder(replace(base.data, name=name))
        return base.data.data_dir
    return resolve_folder(base.data) if len(names) == 1 else None


def check_mlflow(tracking_uri: str, timeout: float = 5.0) -> str | None:
    """None when the tracking store answers, else why not."""
    url = urlparse(tracking_uri)
    if url.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=timeout) as resp:
                if resp.status == 200:
                    return None
                return f"MLflow server {tracking_uri} answered /health with HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return (
                f"MLflow server {tracking_uri} is unreachable ({reason}); if the local stack's MLflow server stopped "
                "while the rest runs, restart only it: python -m cluster.stack restart mlflow --state-dir .stack; with "
                "no stack, start one (cluster/start_stack.sh); or fix --mlflow-uri / MLFLOW_TRACKING_URI"
            )
    if url.scheme == "sqlite":
        folder = Path(tracking_uri[len("sqlite:///") :]).parent
        return None if folder.is_dir() else f"MLflow store {tracking_uri}: folder {folder} does not exist"
    return f"MLflow tracking URI {tracking_uri!r} must be http(s)://host:port or sqlite:///PATH"


def check_ray(address: str | None, timeout: float = 5.0) -> str | None:
    """None for a local cluster (``local``/None) or when the address's port answers."""
    if address in (None, "", "local", "auto"):
        return None
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        return f"Ray address {address!r} must be host:port, ray://host:port or http://host:port"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"Ray cluster at {address} is unreachable ({exc.strerror or exc}); start it (cluster/start_stack.sh) or fix --ray-address / RAY_ADDRESS"
    return None


def preflight(settings: StorageSettings, tracking_uri: str, ray_address: str | None, timeout: float = 5.0) -> None:
    """Raise :class:`PreflightError` naming every unreachable or missing service."""
    problems = [
        p
        for p in (
            check_storage(settings, timeout),
            check_mlflow(tracking_uri, timeout),
            check_ray(ray_address, timeout),
        )
        if p
    ]
    if problems:
        raise PreflightError("cannot start the sweep:\n  - " + "\n  - ".join(problems))
