"""One storage settings object from which every S3 client setting is derived.

Ray, pyarrow, boto3 and MLflow each spell an S3-compatible endpoint differently (stack.md):
pyarrow ignores ``AWS_ENDPOINT_URL`` and wants ``endpoint_override`` + ``scheme``; Ray takes a
pyarrow filesystem with a path without scheme; boto3 wants ``endpoint_url``; MLflow reads
``MLFLOW_S3_ENDPOINT_URL``. :class:`StorageSettings` holds the endpoint, bucket, prefix, region
and credentials once and derives all four, so they can never disagree.

Credentials come from the environment (``RADAE_S3_ACCESS_KEY_ID``/``RADAE_S3_SECRET_ACCESS_KEY``,
else ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``). They are excluded from ``repr``/``str`` and
:func:`scrub` removes them from anything that is logged or stored (MLflow params, Parquet rows,
log lines).

    settings = StorageSettings.from_env()              # RADAE_S3_ENDPOINT, RADAE_S3_BUCKET, ...
    path, fs = settings.ray_storage("sweep-1")         # Tuner / TorchTrainer storage
    boto3.client("s3", **settings.boto3_kwargs())
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from radae.store.s3fs import SettingsS3FileSystem

# Environment variable names (RADAE_S3_* win over the AWS_* fallbacks).
ENV = {
    "endpoint": ("RADAE_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "bucket": ("RADAE_S3_BUCKET",),
    "prefix": ("RADAE_S3_PREFIX",),
    "region": ("RADAE_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    "access_key": ("RADAE_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
    "secret_key": ("RADAE_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    "session_token": ("RADAE_S3_SESSION_TOKEN", "AWS_SESSION_TOKEN"),
}
MASK = "***"
# Attempts of each pyarrow S3 request (AWS standard retry strategy, exponential backoff): Ray's
# own uploads (checkpoints, experiment state) rely on these.
S3_MAX_ATTEMPTS = 10
# The sweep's own S3 calls (rows, lease) make one attempt per request and retry themselves,
# naming the outage (radae.store.retry).
S3_OWN_ATTEMPTS = 1
# Keys whose values are secrets wherever they appear (env dumps, configs, kwargs).
_SECRET_KEY = re.compile(r"(secret|password|passwd|token|access_key|credential|aws_access_key_id)", re.I)


class SettingsError(ValueError):
    """A storage setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class StorageSettings:
    """Where a sweep's artefacts live: an S3-compatible bucket and a key prefix.

    ``endpoint`` is ``http(s)://host:port`` of an S3-compatible server (SeaweedFS, MinIO), or None for
    AWS itself. Secrets are ``repr=False`` and never printed.
    """

    bucket: str
    endpoint: str | None = None
    prefix: str = "radae"
    region: str = "us-east-1"
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.bucket or "/" in self.bucket:
            raise SettingsError(f"storage bucket must be a bucket name without '/', got {self.bucket!r}")
        if self.endpoint is not None:
            url = urlparse(self.endpoint)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise SettingsError(f"storage endpoint must look like http://host:port, got {self.endpoint!r}")
        object.__setattr__(self, "prefix", self.prefix.strip("/"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> StorageSettings:
        """Settings from ``RADAE_S3_*`` (else ``AWS_*``) variables; explicit ``overrides`` win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, keys in ENV.items():
            found = next((env[k] for k in keys if env.get(k)), None)
            if found is not None:
                values[name] = found
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "bucket" not in values:
            raise SettingsError("no storage bucket: set RADAE_S3_BUCKET or pass --bucket")
        return cls(**values)

    # ---- derived settings -------------------------------------------------------------------
    def __str__(self) -> str:
        where = self.endpoint or "aws"
        return f"s3://{self.bucket}/{self.prefix} at {where}"

    def uri(self, *parts: str) -> str:
        """``s3://bucket/prefix/parts...`` (display and MLflow artifact roots; no credentials)."""
        return "s3://" + self.key(*parts, with_bucket=True)

    def key(self, *parts: str, with_bucket: bool = False) -> str:
        """Object key ``prefix/parts...`` (``bucket/prefix/...`` with ``with_bucket``)."""
        segs = ([self.bucket] if with_bucket else []) + [self.prefix] + [p.strip("/") for p in parts]
        return "/".join(s for s in segs if s)

    def pyarrow_kwargs(self, max_attempts: int | None = None) -> dict[str, Any]:
        """Keyword arguments of ``pyarrow.fs.S3FileSystem`` (credentials included when set); each request
        is tried ``max_attempts`` times (default :data:`S3_MAX_ATTEMPTS`)."""
        kwargs: dict[str, Any] = {"region": self.region}
        if self.endpoint:
            url = urlparse(self.endpoint)
            kwargs.update(endpoint_override=url.netloc, scheme=url.scheme)
        if self.access_key and self.secret_key:
            kwargs.update(access_key=self.access_key, secret_key=self.secret_key, session_token=self.session_token)
        # Short timeouts per request, and the AWS SDK's standard retries with exponential backoff
        # (0.1 s doubling, capped at 20 s): an endpoint away for up to about a minute delays every
        # pyarrow call (Ray's checkpoint and experiment-state uploads included) instead of failing it.
        from pyarrow import fs

        kwargs.update(
            connect_timeout=5,
            request_timeout=30,
            retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=max_attempts or S3_MAX_ATTEMPTS),
        )
        return kwargs

    def pyarrow_fs(self, max_attempts: int | None = None):
        """``pyarrow.fs.S3FileSystem`` for this endpoint (paths are ``bucket/key``, no scheme); each request
        tried ``max_attempts`` times (default :data:`S3_MAX_ATTEMPTS`; the sweep's own calls pass
        :data:`S3_OWN_ATTEMPTS` and retry through :func:`radae.store.s3fs.s3_call`).

        Its pickle (Ray's experiment state, every trial and Train worker) holds the public settings
        only; unpickled, it reads the credentials from that process's environment
        (:class:`radae.store.s3fs.SettingsS3FileSystem`).
        """
        return SettingsS3FileSystem(self, max_attempts)

    def ray_storage(self, *parts: str) -> tuple[str, Any]:
        """``(storage_path, storage_filesystem)`` for Ray Tune/Train: ``bucket/prefix/ray/...``.

        Ray pickles the filesystem into its experiment state in the bucket and into every worker:
        :meth:`pyarrow_fs` carries no credential, each worker reads its own environment's.
        """
        return self.key("ray", *parts, with_bucket=True), self.pyarrow_fs()

    def boto3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``boto3.client("s3", ...)``."""
        kwargs: dict[str, Any] = {"region_name": self.region}
        if self.endpoint:
            kwargs["endpoint_url"] = self.endpoint
        if self.access_key and self.secret_key:
            kwargs.update(aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)
            if self.session_token:
                kwargs["aws_session_token"] = self.session_token
        return kwargs

    def boto3_client(self, timeout: float = 5.0):
        """A boto3 S3 client with short timeouts and few retries (preflight must fail fast)."""
        import boto3
        from botocore.config import Config

        cfg = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1})
        return boto3.client("s3", config=cfg, **self.boto3_kwargs())

    def mlflow_client_env(self) -> dict[str, str]:
        """Environment for MLflow clients that write artifacts to this store directly."""
        return {"MLFLOW_S3_ENDPOINT_URL": self.endpoint} if self.endpoint else {}

    def server_env(self) -> dict[str, str]:
        """Environment of a process that talks to S3 itself (MLflow server, Ray head): with secrets."""
        env = dict(self.mlflow_client_env())
        env["AWS_DEFAULT_REGION"] = self.region
        if self.access_key and self.secret_key:
            env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        return env

    def radae_env(self) -> dict[str, str]:
        """``RADAE_S3_*`` variables of these settings, credentials included (what :meth:`from_env` reads)."""
        return {names[0]: str(getattr(self, name)) for name, names in ENV.items() if getattr(self, name)}

    def public(self) -> dict[str, Any]:
        """Non-secret fields (safe to log or store)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.repr}

    def secrets(self) -> list[str]:
        """The secret strings :func:`scrub` must remove."""
        return [s for s in (self.access_key, self.secret_key, self.session_token) if s]


def env_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Secret values found in the environment (every variable of :data:`ENV`'s credential names)."""
    env = os.environ if env is None else env
    names = ENV["access_key"] + ENV["secret_key"] + ENV["session_token"]
    return [env[n] for n in names if env.get(n)]


def scrub(value: Any, secrets: list[str] | None = None) -> Any:
    """``value`` with every credential removed, recursively (dicts, lists, tuples, strings).

    Values under secret-looking keys (``*secret*``, ``*token*``, ``*access_key*`` ...) become
    ``***``, and every occurrence of a known secret string (from ``secrets`` and the environment)
    inside any string is replaced by ``***``. Used on everything logged or stored.
    """
    known = sorted({s for s in (secrets or []) + env_secrets() if len(s) >= 4}, key=len, reverse=True)
    return _scrub(value, known)


def _scrub(value: Any, known: list[str]) -> Any:
    if isinstance(value, Mapping):
        return {
            k: (MASK if _SECRET_KEY.search(str(k)) and v not in (None, "") else _scrub(v, known))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, known) for v in value)
    if isinstance(value, str):
        for secret in known:
            value = value.replace(secret, MASK)
        return value
    return value
