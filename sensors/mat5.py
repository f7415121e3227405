"""A minimal MATLAB level-5 (v5) MAT-file writer for real double arrays.

MM-Fi's CSI frames are MAT v5 files holding two real ``double`` arrays (``CSIamp``,
``CSIphase``); scipy's ``savemat`` spends ~0.1 ms of Python per frame on them (plus a
~0.2 s import in every worker process). This writer produces the same bytes as
``scipy.io.savemat(..., do_compression=False)`` after the 116-byte header text (which
holds a timestamp), so every MAT reader, scipy's ``loadmat`` and MATLAB included, reads
it. Reading stays with scipy. Layout from MathWorks' "MAT-File Format" (level 5):

- 128-byte header: 116 bytes of text, 8 bytes subsystem offset, version 0x0100, ``IM``
  (the endian indicator as a little-endian writer stores it);
- per variable one ``miMATRIX`` element: array flags (``miUINT32``: class ``mxDOUBLE``),
  dimensions (``miINT32``), name (``miINT8``; the small-element form up to 4 bytes),
  real part (``miDOUBLE``, column-major); every sub-element is padded to 8 bytes.
"""

from __future__ import annotations

import struct
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
