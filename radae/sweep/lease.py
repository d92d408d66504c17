"""One driver per sweep: a lease object in the bucket, held while the driver runs.

``s3://BUCKET/PREFIX/locks/sweep=<id>/driver.json`` records the driver holding the sweep (host,
PID and its start time, a random token) and a heartbeat it refreshes every ``period`` seconds.
A second driver on the same sweep id (fresh or ``--resume``) finds a live lease and is refused
with :class:`LeaseError` naming the holder, before it starts Ray, touches MLflow or writes
anything. A lease of a driver on this host is taken over as soon as its PID is gone (a driver
killed with SIGKILL is resumed at once); one of another host when its heartbeat is older than
``ttl`` (180 s: several heartbeats). While the S3 endpoint is away each missed heartbeat is logged
(``S3 endpoint <url> unreachable renewing the driver lease ...``) and so is its return.

Two drivers starting in the same instant both write; each reads the object back after a short
pause and only the one whose token is there proceeds (last writer wins, the other is refused).
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from typing import Any

from radae.sweep.procfs import start_time
from radae.sweep.results import check_id
from radae.sweep.s3fs import s3_call, s3_outage
from radae.sweep.settings import S3_OWN_ATTEMPTS, StorageSettings


class LeaseError(RuntimeError):
    """Another driver holds the sweep, or the lease stayed unreachable; the message names it."""


def lease_path(settings: StorageSettings, sweep_id: str) -> str:
    return settings.key("locks", f"sweep={check_id('sweep id', sweep_id)}", "driver.json", with_bucket=True)


class DriverLease:
    """Acquire with :meth:`acquire` (or ``with``); refreshed by a daemon thread; :meth:`release` deletes it."""

    def __init__(
        self, settings: StorageSettings, sweep_id: str, *, ttl: float = 180.0, period: float = 5.0, settle: float = 0.5
    ) -> None:
        import os

        self.settings, self.sweep_id, self.ttl, self.period, self.settle = settings, sweep_id, ttl, period, settle
        self.path = lease_path(settings, sweep_id)
        pid = os.getpid()
        self.record = {
            "sweep_id": sweep_id,
            "host": socket.gethostname(),
            "pid": pid,
            "pid_start": start_time(pid),
            "token": secrets.token_hex(8),
            "acquired_at": time.time(),
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fs = settings.pyarrow_fs(S3_OWN_ATTEMPTS)

    # ---- storage ----------------------------------------------------------------------------
    def read(self) -> dict[str, Any] | None:
        """The lease record in the bucket (None if absent), retried while the S3 endpoint is away."""
        return s3_call(self.settings, f"reading the driver lease s3://{self.path}", self._read_once, error=LeaseError)

    def _read_once(self) -> dict[str, Any] | None:
        import pyarrow.fs as pafs

        if self._fs.get_file_info(self.path).type != pafs.FileType.File:
            return None
        with self._fs.open_input_stream(self.path) as f:
            try:
                return json.loads(f.read())
            except ValueError:
                return None  # a torn or foreign object holds nothing

    def _write(self) -> None:
        s3_call(self.settings, f"writing the driver lease s3://{self.path}", self._write_once, error=LeaseError)

    def _write_once(self) -> None:
        with self._fs.open_output_stream(self.path) as out:
            out.write(json.dumps({**self.record, "heartbeat": time.time()}).encode())

    # ---- protocol ---------------------------------------------------------------------------
    def holder_alive(self, held: dict[str, Any]) -> bool:
        """Whether the driver recorded in ``held`` still runs: on this host, whether its PID (with its start
        time) is alive; on another host, whether its heartbeat is younger than ``ttl``."""
        if held.get("host") == socket.gethostname():
            return start_time(int(held.get("pid", -1))) == held.get("pid_start")
        return time.time() - float(held.get("heartbeat", 0)) <= self.ttl

    def acquire(self) -> DriverLease:
        held = self.read()
        if held is not None and held.get("token") != self.record["token"] and self.holder_alive(held):
            raise self._refusal(held)
        self._write()
        time.sleep(self.settle)
        now = self.read()
        if now is None or now.get("token") != self.record["token"]:
            raise self._refusal(now or {})
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
                held = self._read_once()
                if held is not None and held.get("token") == self.record["token"]:
                    self._write_once()
            except OSError as exc:
                # Storage away: logged, the next beat retries (the TTL allows several misses).
                outage.failed(what, exc, f"next heartbeat in {self.period:g} s")
            else:
                outage.ok(what)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.period + 5)
        try:
            held = self._read_once()
            if held is not None and held.get("token") == self.record["token"]:
                self._fs.delete_file(self.path)
        except OSError:
            pass  # a lease left behind goes stale after ttl seconds (or at once when the PID is gone)

    def __enter__(self) -> DriverLease:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
