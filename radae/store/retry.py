"""Bounded retries with backoff around calls to a service (S3 endpoint, MLflow server) that name the outage.

The clients' own retries (pyarrow's AWS SDK, MLflow's HTTP session) absorb an outage silently; the
sweep's own calls use clients with those cut down (:data:`radae.store.settings.S3_OWN_ATTEMPTS`,
``MLFLOW_HTTP_REQUEST_MAX_RETRIES``) and go through :func:`call`, which logs each failed attempt and
the recovery as warnings from this code (trial processes have no logging set up, so warnings reach
the job output through Python's last-resort handler)::

    S3 endpoint http://127.0.0.1:9000 unreachable writing s3://b/p/results/sweep=s/trial=t.parquet:
        OSError: ... NETWORK_CONNECTION ...; retry 2/10 in 2 s
    S3 endpoint http://127.0.0.1:9000 reachable again after 12 s (writing s3://...)

A call that still fails after the last attempt raises the caller's error class naming the service,
the endpoint, what was being done and for how long. Only transient failures (no connection, reset,
timeout, 429/5xx) are retried; any other error is raised at once.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
_POOL = re.compile(r"HTTP(S)?ConnectionPool\(host=[^)]*\): Max retries exceeded with url: \S+ \(Caused by (.*)\)")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all, waiting ``first_wait`` s after the first failure, doubling up to ``max_wait``."""

    attempts: int = 10
    first_wait: float = 2.0
    max_wait: float = 30.0

    def wait(self, failed: int) -> float:
        """Seconds to wait after the ``failed``-th failed attempt (1-based)."""
        return min(self.first_wait * 2.0 ** (failed - 1), self.max_wait)


# 10 attempts over about 3 minutes (2, 4, 8, 16, then 30 s between them).
DEFAULT_POLICY = RetryPolicy()


class Outage:
    """One service endpoint as this process sees it: logs a failure and, after one, the recovery."""

    def __init__(self, service: str, endpoint: str, logger: logging.Logger | None = None) -> None:
        self.service, self.endpoint = service, endpoint
        self.log = logger or log
        self.since: float | None = None  # time.monotonic() of the first failure of the current outage

    def failed(self, what: str, exc: BaseException, then: str) -> None:
        """Log ``<service> <endpoint> unreachable <what>: <error>; <then>``."""
        if self.since is None:
            self.since = time.monotonic()
        self.log.warning("%s %s unreachable %s: %s; %s", self.service, self.endpoint, what, describe(exc), then)

    def ok(self, what: str) -> None:
        """The endpoint answered: log the recovery if it had failed."""
        if self.since is not None:
            down = time.monotonic() - self.since
            self.since = None
            self.log.warning("%s %s reachable again after %.0f s (%s)", self.service, self.endpoint, down, what)

    def down_for(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since


_OUTAGES: dict[tuple[str, str], Outage] = {}


def outage_of(service: str, endpoint: str) -> Outage:
    """This process's :class:`Outage` of ``endpoint`` (shared, so whichever call succeeds first logs the recovery)."""
    return _OUTAGES.setdefault((service, endpoint), Outage(service, endpoint))


def describe(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message`` (shortened): enough to tell refused from reset or timed out."""
    text = " ".join(str(exc).split())
    # urllib3's wrapper says nothing the endpoint and call do not: keep its cause (refused, reset, timed out).
    text = _POOL.sub(r"\2", text)
    return f"{type(exc).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def call(
    fn: Callable[[], T],
    *,
    outage: Outage,
    what: str,
    transient: Callable[[BaseException], bool],
    error: type[Exception],
    policy: RetryPolicy = DEFAULT_POLICY,
    hint: str = "",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``fn()``, retried with backoff while it fails transiently; each failure and the recovery logged.

    After ``policy.attempts`` failures raises ``error`` naming the service, endpoint, ``what`` and how
    long it was away (plus ``hint``), chained to the last failure. Non-transient errors propagate as they are.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            result = fn()
        except Exception as exc:
            if not transient(exc):
                raise
            if attempt == policy.attempts:
                if outage.since is None:
                    outage.since = time.monotonic()
                raise error(
                    f"{outage.service} {outage.endpoint} unreachable {what} for {outage.down_for():.0f} s "
                    f"({attempt} attempts): {describe(exc)}{'; ' + hint if hint else ''}"
                ) from exc
            wait = policy.wait(attempt)
            outage.failed(what, exc, f"retry {attempt + 1}/{policy.attempts} in {wait:g} s")
            sleep(wait)
        else:
            outage.ok(what)
            return result
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during (``__cause__``/``__context__``)."""
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out
