"""Which addresses a set of processes listen on, read from the kernel's socket tables.

``/proc/net/{tcp,tcp6,udp,udp6}`` list every socket with its local address, state and inode;
``/proc/<pid>/fd/*`` links to ``socket:[inode]`` for each socket a process holds. Joining the two
gives, for each process, the TCP sockets in state LISTEN and the bound UDP sockets, without
sending any traffic. Used by the stack test (every socket of the stack on loopback) and by
``python -m radae.sweep.stack sockets``.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

_TCP_LISTEN, _UDP_UNCONN = "0A", "07"


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
            lines = Path(f"/proc/net/{proto}").read_text().splitlines()[1:]
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
            command = Path(f"/proc/{pid}/comm").read_text().strip()
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
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
