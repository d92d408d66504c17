"""IDX files (MNIST, FashionMNIST), gzip-compressed or raw, read and written with numpy.

Format: two zero bytes, a type code (0x08 = unsigned byte, the only one these datasets use),
the number of dimensions n, then n big-endian uint32 sizes, then prod(sizes) bytes of data.
Every check names the file: a short or corrupt file is reported before any training starts.
The shipped .gz copies are not byte-identical to the upstream archives, so files are validated
by structure (header, sizes, payload length), never by checksum.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from radae.data.base import DataError

_UBYTE = 0x08


def _read_bytes(path: Path) -> bytes:
    """The decompressed bytes of ``path`` (gzip when it starts with the gzip magic)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read data file {path}: {err.strerror or err}") from None
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as err:
        raise DataError(f"data file {path} is a corrupt or truncated gzip file ({err})") from None


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """The uint8 array stored in IDX file ``path``, which must have ``ndim`` dimensions.

    Raises :class:`DataError` naming the file for a bad magic number, another element type,
    the wrong number of dimensions, or a payload shorter or longer than the header promises.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"data file {path} is truncated: {len(data)} bytes, shorter than an IDX header")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"data file {path} is not an IDX file (magic bytes {data[:4].hex()}, expected 0000080{ndim})")
    if data[2] != _UBYTE:
        raise DataError(f"data file {path} holds IDX type 0x{data[2]:02x}; only unsigned bytes (0x08) are supported")
    if data[3] != ndim:
        raise DataError(f"data file {path} has {data[3]} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"data file {path} is truncated: {len(data)} bytes, the IDX header alone needs {header}")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(
            f"data file {path} is {what}: header {shape} needs {expected} bytes "
            f"(decompressed), the file has {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write uint8 ``array`` as an IDX file (gzip when ``compress`` or the name ends in .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=6)
    path.write_bytes(payload)
    return path
