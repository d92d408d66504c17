"""The kernel's process and socket tables, read from ``/proc`` (the one reader; Linux only).

Processes: ``/proc/<pid>/stat`` gives each process's state, parent, process group, start time
and resident pages (proc(5); the command name in parentheses may itself hold spaces or ``)``,
so fields are counted after the last ``)``). :func:`start_time` tells a live PID apart from a
later process reusing it (the sweep driver's lease, :mod:`radae.store.lease`); :func:`processes`
and :func:`descendants` follow a process tree across process groups and sessions (the local
stack's tooling, ``cluster/stack.py``).

Sockets: ``/proc/net/{tcp,tcp6,udp,udp6}`` list every socket with its local address, state and
inode; ``/proc/<pid>/fd/*`` links to ``socket:[inode]`` for each socket a process holds. Joining
the two gives, for each process, the TCP sockets in state LISTEN and the bound UDP sockets,
without sending any traffic (:func:`listeners`: ``python -m cluster.stack sockets`` and the
stack's loopback test).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20
_TCP_LISTEN, _UDP_UNCONN = "0A", "07"


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the tooling uses (proc(5) field numbers in brackets)."""

    state: str  # (3) "R", "S", ..., "Z" for a zombie
    ppid: int  # (4)
    pgid: int  # (5)
    start_ticks: int  # (22) start time after boot, clock ticks
    rss_pages: int  # (24)

    @property
    def zombie(self) -> bool:
        return self.state == "Z"


def read_stat(pid: int | str) -> ProcStat | None:
    """``/proc/<pid>/stat`` of one process, or None when there is no such process (or it is unreadable)."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return ProcStat(fields[0], int(fields[1]), int(fields[2]), int(fields[19]), int(fields[21]))
    except (OSError, ValueError, IndexError):
        return None


def processes() -> dict[int, ProcStat]:
    """``pid -> ProcStat`` of every process now (zombies included)."""
    table = {}
    for entry in PROC.glob("[0-9]*"):
        stat = read_stat(entry.name)
        if stat is not None:
            table[int(entry.name)] = stat
    return table


def start_time(pid: int) -> int | None:
    """Start time of a live (non-zombie) ``pid`` (tells a PID apart from a later reuse), else None."""
    stat = read_stat(pid)
    return None if stat is None or stat.zombie else stat.start_ticks


def descendants(pid: int, table: dict[int, ProcStat] | None = None) -> list[int]:
    """``pid`` and every live (non-zombie) descendant of it, in any process group or session."""
    table = processes() if table is None else table
    children: dict[int, list[int]] = {}
    for child, stat in table.items():
        children.setdefault(stat.ppid, []).append(child)
    found, todo = [], [pid] if pid in table else []
    while todo:
        cur = todo.pop()
        found.append(cur)
        todo.extend(children.get(cur, []))
    return [p for p in found if not table[p].zombie]


def group_members(pgid: int, table: dict[int, ProcStat] | None = None) -> list[int]:
    """The live (non-zombie) processes of process group ``pgid``."""
    table = processes() if table is None else table
    return [p for p, stat in table.items() if stat.pgid == pgid and not stat.zombie]


def rss_mib(pids: list[int], table: dict[int, ProcStat] | None = None) -> float:
    """Summed resident memory of ``pids`` (those still in the table), MiB."""
    table = processes() if table is None else table
    return sum(table[p].rss_pages for p in pids if p in table) * PAGE_MIB


# ---- sockets --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Listener:
    """One listening socket: protocol, local address and port, owning PID and command name."""

    proto: str
    address: str
    port: int
    pid: int
    command: str

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.address).is_loopback

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.proto} {host}:{self.port} pid {self.pid} ({self.command})"


def _address(hex_addr: str) -> str:
    """Kernel hex (little-endian 32-bit words) to a textual IPv4/IPv6 address."""
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = struct.unpack("<4I", raw)
    addr = ipaddress.IPv6Address(struct.pack(">4I", *words))
    return str(addr.ipv4_mapped or addr)


def _bound_sockets() -> dict[int, tuple[str, str, int]]:
    """``inode -> (proto, address, port)`` of TCP sockets in LISTEN and unconnected bound UDP sockets."""
    out = {}
    for proto, state in (("tcp", _TCP_LISTEN), ("tcp6", _TCP_LISTEN), ("udp", _UDP_UNCONN), ("udp6", _UDP_UNCONN)):
        try:
            lines = (PROC / "net" / proto).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != state:
                continue
            addr, port = fields[1].split(":")
            out[int(fields[9])] = (proto.rstrip("6"), _address(addr), int(port, 16))
    return out


def listeners(pids: list[int]) -> list[Listener]:
    """Every listening socket held by one of ``pids`` (a socket shared by several is listed per holder)."""
    bound = _bound_sockets()
    found = []
    for pid in pids:
        try:
            command = (PROC / str(pid) / "comm").read_text().strip()
            fds = list((PROC / str(pid) / "fd").iterdir())
        except OSError:
            continue
        seen = set()
        for fd in fds:
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:[") and (inode := int(target[8:-1])) in bound and inode not in seen:
                seen.add(inode)
                proto, address, port = bound[inode]
                found.append(Listener(proto, address, port, pid, command))
    return sorted(found, key=lambda item: (item.command, item.proto, item.port, item.pid))
