"""A pyarrow S3 filesystem whose pickle holds no credential, and the sweep's own retried S3 calls.

Ray pickles the ``storage_filesystem`` of a Tuner or TorchTrainer into its experiment state, which
it writes to the bucket, and ships it to every trial and Train worker. A plain
``pyarrow.fs.S3FileSystem`` built with ``access_key``/``secret_key`` pickles them too.
:class:`SettingsS3FileSystem` pickles only the public storage settings (endpoint, bucket, prefix,
region) and its number of attempts per request; wherever it is unpickled it reads the credentials
again from that process's environment (``RADAE_S3_*``, else ``AWS_*``;
:meth:`radae.store.settings.StorageSettings.from_env`).

:func:`s3_call` runs one of the sweep's own S3 operations (rows, the driver lease) on a filesystem
of :data:`~radae.store.settings.S3_OWN_ATTEMPTS` attempts per request, retrying it with backoff
(:mod:`radae.store.retry`) and logging ``S3 endpoint <url> unreachable <what>: ...; retry k/n in s``
and ``S3 endpoint <url> reachable again after N s``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from pyarrow import fs

from radae.store.retry import DEFAULT_POLICY, Outage, RetryPolicy, call, outage_of

T = TypeVar("T")
# pyarrow's messages of S3 failures worth retrying: no connection, reset, timeout, throttling, 5xx.
_TRANSIENT = re.compile(
    r"NETWORK_CONNECTION|SERVICE_UNAVAILABLE|SLOW_DOWN|THROTTLING|INTERNAL_FAILURE|REQUEST_TIMEOUT|curlCode|"
    r"HTTP status (429|5\d\d)|timed out|Connection reset",
    re.I,
)


class SettingsS3FileSystem(fs.S3FileSystem):
    """``S3FileSystem`` of a :class:`~radae.store.settings.StorageSettings`; pickles without secrets."""

    def __init__(self, settings: Any, max_attempts: int | None = None) -> None:
        super().__init__(**settings.pyarrow_kwargs(max_attempts))
        # The settings' class travels by reference (its module path), so this module needs no import
        # of radae.store.settings, which imports it: no cycle.
        self._settings_type = type(settings)
        self._public = settings.public()
        self._max_attempts = max_attempts

    def __reduce__(self):
        return _from_environment, (self._settings_type, self._public, self._max_attempts)


def _from_environment(
    settings_type: Any, public: dict[str, Any], max_attempts: int | None = None
) -> SettingsS3FileSystem:
    """Unpickle: the public settings plus the credentials of this process's environment (``settings_type.from_env``)."""
    return SettingsS3FileSystem(settings_type.from_env(**public), max_attempts)


def s3_transient(exc: BaseException) -> bool:
    """Whether a pyarrow S3 error is the endpoint being away (worth retrying), not a refusal or a bad object."""
    return isinstance(exc, OSError) and bool(_TRANSIENT.search(str(exc)))


# boto3's failures that mean the endpoint is away (no connection, reset, timeout); ClientErrors are answers,
# except throttling and 5xx.
_BOTO3_AWAY = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)


def boto3_transient(exc: BaseException) -> bool:
    """Whether a boto3 S3 error is the endpoint being away or overloaded (worth retrying), not an answer."""
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return status == 429 or status >= 500
    return isinstance(exc, _BOTO3_AWAY)


def s3_outage(settings: Any) -> Outage:
    """This process's :class:`~radae.store.retry.Outage` of the settings' S3 endpoint."""
    return outage_of("S3 endpoint", settings.endpoint or "aws")


def s3_call(
    settings: Any,
    what: str,
    fn: Callable[[], T],
    *,
    error: type[Exception],
    policy: RetryPolicy = DEFAULT_POLICY,
    transient: Callable[[BaseException], bool] = s3_transient,
) -> T:
    """``fn()`` (an S3 operation of the sweep's own, ``what`` e.g. ``writing s3://...``) retried with
    backoff while the endpoint is away; ``error`` naming endpoint and object once it gives up. ``transient``
    tells an outage from an answer (pyarrow's errors by default; :func:`boto3_transient` for boto3 calls)."""
    return call(fn, outage=s3_outage(settings), what=what, transient=transient, error=error, policy=policy)
