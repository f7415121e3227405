"""A minimal MATLAB level-5 (v5) MAT-file writer for real double arrays, and its reader.

MM-Fi's CSI frames are MAT v5 files holding two real ``double`` arrays (``CSIamp``,
``CSIphase``); scipy's ``savemat`` spends ~0.1 ms of Python per frame on them (plus a
~0.2 s import in every worker process). This writer produces the same bytes as
``scipy.io.savemat(..., do_compression=False)`` after the 116-byte header text (which
holds a timestamp), so every MAT reader, scipy's ``loadmat`` and MATLAB included, reads
it. Layout from MathWorks' "MAT-File Format" (level 5):

- 128-byte header: 116 bytes of text, 8 bytes subsystem offset, version 0x0100, ``IM``
  (the endian indicator as a little-endian writer stores it);
- per variable one ``miMATRIX`` element: array flags (``miUINT32``: class ``mxDOUBLE``),
  dimensions (``miINT32``), name (``miINT8``; the small-element form up to 4 bytes),
  real part (``miDOUBLE``, column-major); every sub-element is padded to 8 bytes.

:func:`read_mat5` reads the numeric arrays of any v5 file (MATLAB's compressed
``miCOMPRESSED`` elements, big-endian files, data stored in a smaller type than its
class, as MATLAB writes integral doubles). It exists because frames arrive from
clients: scipy's ``loadmat`` trusts the file, and a data-type code out of its table
(one flipped byte) crashes the whole process with a segmentation fault. Every size and
code here is checked against the bytes first, and anything wrong is a
:class:`MatReadError`.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping

import numpy as np

MI_INT8, MI_INT32, MI_UINT32, MI_DOUBLE, MI_MATRIX = 1, 5, 6, 9, 14
MX_DOUBLE_CLASS = 6
_HEADER_TEXT = b"MATLAB 5.0 MAT-file Platform: posix, Created by: rigserve"
HEADER = _HEADER_TEXT.ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0100) + b"IM"


def _element(mi_type: int, payload: bytes) -> bytes:
    """Tag (type, byte count) + payload, padded to a multiple of 8 bytes."""
    pad = -len(payload) % 8
    return struct.pack("<II", mi_type, len(payload)) + payload + b"\x00" * pad


def _name_element(name: bytes) -> bytes:
    """The array name; up to 4 bytes go in the "small data element" form (one 8-byte
    word: uint16 type, uint16 count, data), as scipy and MATLAB write short names."""
    if len(name) <= 4:
        return struct.pack("<HH", MI_INT8, len(name)) + name.ljust(4, b"\x00")
    return _element(MI_INT8, name)


def _matrix(name: str, arr: np.ndarray) -> bytes:
    if not name.isidentifier() or len(name) > 63 or not name.isascii():
        raise ValueError(f"MAT variable names are ASCII identifiers of <= 63 characters, "
                         f"got {name!r}")
    if arr.dtype != np.float64:
        raise ValueError(f"{name}: this writer stores real float64 arrays, got {arr.dtype}")
    # MATLAB has no 0-d or 1-d arrays: a scalar is 1x1 and a vector a 1xN row (scipy's
    # default oned_as="row").
    dims = arr.shape if arr.ndim >= 2 else (1, arr.size)
    body = (
        _element(MI_UINT32, struct.pack("<II", MX_DOUBLE_CLASS, 0))
        + _element(MI_INT32, struct.pack(f"<{len(dims)}i", *dims))
        + _name_element(name.encode("ascii"))
        # MATLAB stores arrays column-major: Fortran order.
        + _element(MI_DOUBLE, np.asarray(arr, dtype="<f8").tobytes(order="F"))
    )
    return struct.pack("<II", MI_MATRIX, len(body)) + body


def encode_mat5(variables: Mapping[str, np.ndarray]) -> bytes:
    """The bytes of a MAT v5 file holding ``variables`` (name -> real float64 array)."""
    return HEADER + b"".join(_matrix(name, np.asarray(arr)) for name, arr in variables.items())


# ---- reading ------------------------------------------------------------------------------

MI_COMPRESSED = 15
#: miType -> element dtype of numeric data (MAT-File Format, Table 1-1).
_MI_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8",
              12: "i8", 13: "u8"}
#: mxClass (array flags' low byte) -> name; 6..15 are the numeric classes (Table 1-3).
_CLASSES = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 6: "double",
            7: "single", 8: "int8", 9: "uint8", 10: "int16", 11: "uint16", 12: "int32",
            13: "uint32", 14: "int64", 15: "uint64", 16: "function handle", 17: "opaque"}
_NUMERIC = range(6, 16)
_COMPLEX_FLAG = 0x0800
#: A compressed variable may inflate to at most this: a CSI frame is ~27 KiB, and a few
#: KiB of zeros must not become gigabytes in memory.
MAX_INFLATED_BYTES = 64 << 20


class MatReadError(ValueError):
    """The bytes are not a MAT v5 file this reader can read; the message says why."""


def _read_element(buf: bytes, pos: int, order: str, *, padded: bool = True
             ) -> tuple[int, bytes, int]:
    """(miType, payload, next position) of the data element at ``pos``; the "small data
    element" form packs up to 4 bytes and its count into the tag's first word."""
    if pos + 8 > len(buf):
        raise MatReadError(f"a data element at byte {pos} is cut off ({len(buf)} bytes)")
    (word,) = struct.unpack_from(order + "I", buf, pos)
    if word >> 16:
        mi, size = word & 0xFFFF, word >> 16
        if size > 4:
            raise MatReadError(f"a small data element at byte {pos} claims {size} bytes (<= 4)")
        return mi, buf[pos + 4:pos + 4 + size], pos + 8
    (size,) = struct.unpack_from(order + "I", buf, pos + 4)
    end = pos + 8 + size
    if end > len(buf):
        raise MatReadError(f"a data element of {size} bytes at byte {pos} runs past the end "
                           f"({len(buf)} bytes)")
    return word, buf[pos + 8:end], end + (-size % 8 if padded else 0)


def _inflate(payload: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(payload, MAX_INFLATED_BYTES + 1)
    except zlib.error as exc:
        raise MatReadError(f"a compressed variable is not valid zlib data ({exc})") from exc
    if len(out) > MAX_INFLATED_BYTES:
        raise MatReadError(f"a compressed variable inflates past {MAX_INFLATED_BYTES} bytes")
    return out


def _numeric(name: str, buf: bytes, pos: int, order: str, dims: tuple[int, ...]
             ) -> tuple[np.ndarray, int]:
    mi, payload, pos = _read_element(buf, pos, order)
    code = _MI_DTYPES.get(mi)
    if code is None:
        raise MatReadError(f"{name}: numeric data of unknown type code {mi}")
    dtype = np.dtype(order + code)
    count = math.prod(dims)
    if len(payload) != count * dtype.itemsize:
        raise MatReadError(f"{name}: {len(payload)} bytes of {dtype.name} data for dimensions "
                           f"{list(dims)} ({count} elements)")
    return np.frombuffer(payload, dtype), pos


def _matrix_variable(buf: bytes, order: str) -> tuple[str, np.ndarray | str]:
    """Name and value of one miMATRIX payload: the array for numeric classes, else the
    class name ("cell", "struct", "char", ...), which this reader does not decode."""
    mi, flags, pos = _read_element(buf, 0, order)
    if mi != MI_UINT32 or len(flags) != 8:
        raise MatReadError("a matrix does not start with its array flags")
    (word,) = struct.unpack_from(order + "I", flags)
    mi, raw_dims, pos = _read_element(buf, pos, order)
    if mi != MI_INT32 or len(raw_dims) < 8 or len(raw_dims) % 4:
        raise MatReadError("a matrix has no valid dimensions element")
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, order + "i4"))
    mi, raw_name, pos = _read_element(buf, pos, order)
    if mi != MI_INT8 or not raw_name.isascii():
        raise MatReadError("a matrix has no valid name element")
    name = raw_name.decode("ascii")
    mx_class = word & 0xFF
    if mx_class not in _NUMERIC:
        return name, _CLASSES.get(mx_class, f"class {mx_class}")
    if min(dims) < 0:
        raise MatReadError(f"{name}: negative dimensions {list(dims)}")
    real, pos = _numeric(name, buf, pos, order, dims)
    values: np.ndarray = real
    if word & _COMPLEX_FLAG:
        imag, pos = _numeric(name, buf, pos, order, dims)
        values = real + 1j * imag
    try:
        # Stored column-major (Fortran order); copied out to native byte order.
        return name, values.reshape(dims, order="F").astype(values.dtype.newbyteorder("="))
    except ValueError as exc:  # dimensions numpy cannot build, e.g. [2**31 - 1] * 3 + [0]
        raise MatReadError(f"{name}: dimensions {list(dims)}: {exc}") from exc


def read_mat5(data: bytes) -> dict[str, np.ndarray | str]:
    """Every variable of a MAT v5 file: numeric arrays as stored (no squeezing), any other
    class as its class name. Raises :class:`MatReadError` for anything else."""
    if len(data) < 128:
        raise MatReadError(f"{len(data)} bytes, shorter than the 128-byte MAT-file header")
    order = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if order is None:
        raise MatReadError("no MAT v5 endian indicator ('IM' or 'MI') in the header")
    (version,) = struct.unpack_from(order + "H", data, 124)
    if version != 0x0100:
        raise NotImplementedError(f"MAT-file version {version:#06x}; only level 5 (0x0100), "
                                  "as MATLAB's -v6 and -v7 write, is read (not -v7.3 HDF5)")
    variables: dict[str, np.ndarray | str] = {}
    pos = 128
    while pos < len(data):
        # Top-level elements follow each other unpadded (compressed ones are any length).
        mi, payload, pos = _read_element(data, pos, order, padded=False)
        if mi == MI_COMPRESSED:
            mi, payload, _ = _read_element(_inflate(payload), 0, order, padded=False)
        if mi != MI_MATRIX:
            raise MatReadError(f"a top-level element of type {mi}, not a matrix (14)")
        name, value = _matrix_variable(payload, order)
        variables[name] = value
    return variables
