"""One driver per sweep: a lease object in the bucket, held while the driver runs, changed only atomically.

``s3://BUCKET/PREFIX/locks/sweep=<id>/driver.json`` records the driver holding the sweep (host,
PID and its start time, a random token) and a heartbeat it refreshes every ``period`` seconds.
A second driver on the same sweep id (fresh or ``--resume``) finds a live lease and is refused
with :class:`LeaseError` naming the holder, before it starts Ray, touches MLflow or writes
anything. A lease of a driver on this host is taken over as soon as its PID is gone (a driver
killed with SIGKILL is resumed at once); one of another host when its heartbeat is older than
``ttl`` (180 s: several heartbeats). While the S3 endpoint is away each missed heartbeat is logged
(``S3 endpoint <url> unreachable renewing the driver lease ...``) and so is its return.

Every write is an S3 conditional write, so two drivers can never both hold the lease:

- acquire creates the object with ``PutObject(IfNoneMatch="*")``: of two drivers starting in the same
  instant exactly one succeeds, the other gets ``PreconditionFailed`` and is refused by the first's live lease;
- a dead holder's lease is taken over with ``PutObject(IfMatch=<its ETag>)``: of two drivers taking it over
  at once exactly one succeeds, the other then finds the winner's live lease;
- the heartbeat rewrites it with ``IfMatch=<our last ETag>`` and release deletes it with
  ``DeleteObject(IfMatch=...)``: a driver whose lease was taken over (its heartbeat stopped longer than
  ``ttl``) can neither overwrite nor delete the new holder's; it logs that it lost the lease.

A conditional write retried after a lost response answers ``PreconditionFailed`` although it took effect:
the object then holds our own token, which counts as success.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from typing import Any

from botocore.exceptions import ClientError

from radae.store.procfs import start_time
from radae.store.results import check_id
from radae.store.retry import describe
from radae.store.s3fs import boto3_transient, s3_call, s3_outage
from radae.store.settings import StorageSettings

log = logging.getLogger(__name__)
# Answers of a conditional write that lost: the object changed (412), or another conditional write on the
# same key was in flight (409, AWS).
_LOST = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
# Acquire rounds (create, or take over a dead holder's lease) before giving up to a driver that keeps winning.
ACQUIRE_ROUNDS = 5


class LeaseError(RuntimeError):
    """Another driver holds the sweep, or the lease stayed unreachable; the message names it."""


def lease_path(settings: StorageSettings, sweep_id: str) -> str:
    return settings.key("locks", f"sweep={check_id('sweep id', sweep_id)}", "driver.json", with_bucket=True)


def _lost(exc: ClientError) -> bool:
    """Whether ``exc`` is a conditional write (or delete) refused because the object is not as expected."""
    error = exc.response.get("Error", {})
    status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return str(error.get("Code", "")) in _LOST or status in ("412", "409")


class DriverLease:
    """Acquire with :meth:`acquire` (or ``with``); refreshed by a daemon thread; :meth:`release` deletes it."""

    def __init__(self, settings: StorageSettings, sweep_id: str, *, ttl: float = 180.0, period: float = 5.0) -> None:
        self.settings, self.sweep_id, self.ttl, self.period = settings, sweep_id, ttl, period
        self.path = lease_path(settings, sweep_id)
        self.key = self.path.split("/", 1)[1]
        pid = os.getpid()
        self.record = {
            "sweep_id": sweep_id,
            "host": socket.gethostname(),
            "pid": pid,
            "pid_start": start_time(pid),
            "token": secrets.token_hex(8),
            "acquired_at": time.time(),
        }
        self.etag: str | None = None  # the ETag of our last write while we hold the lease
        self.lost = False  # set when the heartbeat found the lease taken over by another driver
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = settings.boto3_client()

    # ---- storage ----------------------------------------------------------------------------
    def read(self) -> dict[str, Any] | None:
        """The lease record in the bucket (None if absent), retried while the S3 endpoint is away."""
        return self._call("reading", self._get)[0]

    def _call(self, doing: str, fn):
        return s3_call(
            self.settings,
            f"{doing} the driver lease s3://{self.path}",
            fn,
            error=LeaseError,
            transient=boto3_transient,
        )

    def _get(self) -> tuple[dict[str, Any] | None, str | None]:
        """``(record, etag)``; ``(None, None)`` when there is no lease; a torn or foreign object holds nothing
        (``{}``) but has an ETag to take it over with."""
        try:
            got = self._client.get_object(Bucket=self.settings.bucket, Key=self.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None, None
            raise
        try:
            held = json.loads(got["Body"].read())
        except ValueError:
            held = {}
        return (held if isinstance(held, dict) else {}), got["ETag"]

    def _put(self, **condition: str) -> str | None:
        """Write our record with a heartbeat under ``condition`` (``IfNoneMatch``/``IfMatch``); the new ETag,
        or None when the condition did not hold (and the object does not hold our token)."""
        body = json.dumps({**self.record, "heartbeat": time.time()}).encode()
        try:
            return self._client.put_object(Bucket=self.settings.bucket, Key=self.key, Body=body, **condition)["ETag"]
        except ClientError as exc:
            if not _lost(exc):
                raise
        held, etag = self._get()
        return etag if held is not None and held.get("token") == self.record["token"] else None

    # ---- protocol ---------------------------------------------------------------------------
    def holder_alive(self, held: dict[str, Any]) -> bool:
        """Whether the driver recorded in ``held`` still runs: on this host, whether its PID (with its start
        time) is alive; on another host, whether its heartbeat is younger than ``ttl``."""
        if held.get("host") == socket.gethostname():
            return start_time(int(held.get("pid", -1))) == held.get("pid_start")
        return time.time() - float(held.get("heartbeat", 0)) <= self.ttl

    def acquire(self) -> DriverLease:
        """Create the lease, or take over a dead holder's; :class:`LeaseError` naming a live holder."""
        held: dict[str, Any] | None = None
        for _ in range(ACQUIRE_ROUNDS):
            self.etag = self._call("creating", lambda: self._put(IfNoneMatch="*"))
            if self.etag:
                break
            held, etag = self._call("reading", self._get)
            if held is None:
                continue  # released in between: create it again
            if self.holder_alive(held):
                raise self._refusal(held)
            self.etag = self._call("taking over", lambda etag=etag: self._put(IfMatch=etag))
            if self.etag:
                log.warning(
                    "sweep %r: took over the driver lease s3://%s of a driver that is gone (pid %s on %s)",
                    self.sweep_id,
                    self.path,
                    held.get("pid"),
                    held.get("host"),
                )
                break
        else:
            raise self._refusal(held or {})
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.sweep_id}", daemon=True)
        self._thread.start()
        return self

    def _refusal(self, held: dict[str, Any]) -> LeaseError:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(held.get("acquired_at", 0))))
        return LeaseError(
            f"sweep {self.sweep_id!r} is being run by another driver (pid {held.get('pid')} on {held.get('host')}, "
            f"since {since}; lease s3://{self.path}); nothing was started or overwritten. Wait for it to end or stop "
            f"it, then --resume"
        )

    def _beat(self) -> None:
        outage, what = s3_outage(self.settings), f"renewing the driver lease s3://{self.path}"
        while not self._stop.wait(self.period):
            try:
                etag = self._put(IfMatch=self.etag)
            except Exception as exc:  # noqa: BLE001 - a failed beat must not end the heartbeat thread
                # Storage away (or refusing): logged, the next beat retries (the TTL allows several misses).
                if boto3_transient(exc):
                    outage.failed(what, exc, f"next heartbeat in {self.period:g} s")
                else:
                    log.warning("%s failed: %s; next heartbeat in %g s", what, describe(exc), self.period)
                continue
            outage.ok(what)
            if etag is None:
                self.lost = True
                log.error(
                    "sweep %r: the driver lease s3://%s was taken over by another driver while this one's "
                    "heartbeat was away; this driver no longer holds the sweep",
                    self.sweep_id,
                    self.path,
                )
                return
            self.etag = etag

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours (``IfMatch``: never another driver's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.period + 15)
        if self.lost or self.etag is None:
            return
        try:
            self._client.delete_object(Bucket=self.settings.bucket, Key=self.key, IfMatch=self.etag)
        except Exception:  # noqa: BLE001 - any failure leaves a lease that goes stale (ttl, or at once: PID gone)
            log.warning("sweep %r: driver lease s3://%s left behind (it goes stale)", self.sweep_id, self.path)

    def __enter__(self) -> DriverLease:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
