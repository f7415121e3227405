"""Model-ready tensors on the KServe v2 path: datatype names and input checks.

KServe v2 / Triton name datatypes ``FP32``, ``INT64``...; Triton's model configuration
names them ``TYPE_FP32``... Both tables live here, next to the check that a request's
tensors fit an engine, so REST and gRPC reject the same things with the same words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from rigserve.server.errors import InvalidInput

if TYPE_CHECKING:
    from rigserve.server.repository import LoadedEngine

#: numpy dtype name -> KServe v2 datatype.
NUMPY_TO_KSERVE: dict[str, str] = {
    "bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP64", "object": "BYTES",
}
KSERVE_TO_NUMPY: dict[str, str] = {v: k for k, v in NUMPY_TO_KSERVE.items()}
#: numpy dtype name -> Triton model-config DataType (model_config.proto): ``TYPE_`` + the
#: KServe name, except that BYTES is ``TYPE_STRING`` there. `export.triton` writes these.
NUMPY_TO_TRITON: dict[str, str] = {
    k: "TYPE_STRING" if v == "BYTES" else f"TYPE_{v}" for k, v in NUMPY_TO_KSERVE.items()
}
#: The same table keyed by native-order dtype: one dict lookup on the request path,
#: where ``np.dtype.name`` costs microseconds per tensor.
_KSERVE_BY_DTYPE: dict[np.dtype[Any], str] = {np.dtype(k): v for k, v in NUMPY_TO_KSERVE.items()}


def kserve_dtype(numpy_dtype: str | np.dtype) -> str:
    found = _KSERVE_BY_DTYPE.get(np.dtype(numpy_dtype))
    if found is not None:
        return found
    name = np.dtype(numpy_dtype).name
    try:
        return NUMPY_TO_KSERVE[name]
    except KeyError:
        raise InvalidInput(f"numpy dtype {name} has no KServe v2 datatype; supported: "
                           f"{', '.join(NUMPY_TO_KSERVE)}") from None


def numpy_dtype(datatype: str) -> np.dtype:
    try:
        return np.dtype(KSERVE_TO_NUMPY[datatype])
    except KeyError:
        raise InvalidInput(f"unknown datatype {datatype!r}; accepted: "
                           f"{', '.join(sorted(KSERVE_TO_NUMPY))}") from None


def triton_type(numpy_dtype_name: str) -> str:
    """Triton model-config type: ``TYPE_FP32``; BYTES is ``TYPE_STRING`` there."""
    kserve = kserve_dtype(numpy_dtype_name)  # normalizes the name, or says what is supported
    return NUMPY_TO_TRITON[KSERVE_TO_NUMPY[kserve]]


def tensor_shape(shape: Sequence[int], what: str) -> tuple[int, ...]:
    """A wire tensor's declared shape as ints, one numpy can build; ``what`` names the
    tensor in the error."""
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise InvalidInput(f"{what}: shape {list(dims)} has a negative dimension; every "
                           "dimension must be 0 or more")
    check_buildable(dims, what)
    return dims


#: numpy refuses an array whose non-zero dimensions multiply past what its byte count can
#: index, even when a zero dimension leaves it empty; 8 bytes is the widest element here.
MAX_ELEMENTS = np.iinfo(np.intp).max // 8


def check_buildable(dims: Sequence[int], what: str) -> None:
    """Refuse a shape numpy cannot build, such as ``[2**62, 2**62, 0]``, before any size
    is compared or any memory allocated (:func:`tensor_shape` calls it; REST's JSON
    shapes too)."""
    extent = math.prod(d for d in dims if d)
    if extent > MAX_ELEMENTS:
        raise InvalidInput(f"{what}: shape {list(dims)} is too large: its non-zero dimensions "
                           f"multiply to {extent} elements; at most {MAX_ELEMENTS} are accepted")


def array_from_le_bytes(data: bytes, dtype: np.dtype[Any], shape: Sequence[int], *,
                        what: str, type_name: str, unit: str = "bytes") -> np.ndarray:
    """Row-major little-endian ``data`` as a native-byte-order array of ``shape``.

    The one decoder for raw tensors on the wire: the rig stream's ``Tensor`` and KServe's
    ``raw_input_contents``. The caller resolves its own type vocabulary to ``dtype``
    and names things in its protocol's words: ``what`` the tensor (``lidar``,
    ``input 'x'``), ``type_name`` its type (``uint16``, ``FP32``), ``unit`` the bytes.
    """
    dims = tensor_shape(shape, what)
    wire = np.dtype(dtype).newbyteorder("<")
    expected = math.prod(dims) * wire.itemsize
    if len(data) != expected:
        raise InvalidInput(f"{what}: {type_name} tensor of shape {list(dims)} needs {expected} "
                           f"{unit}, got {len(data)}")
    # (count,) little-endian -> declared shape, copied to native order for the engines.
    return np.frombuffer(data, dtype=wire).reshape(dims).astype(wire.newbyteorder("="))


class TensorOutputs(dict[str, np.ndarray]):
    """Output tensors by name, plus which engine and subset produced them."""

    def __init__(self, outputs: Mapping[str, np.ndarray], *, engine: str, subset: str) -> None:
        super().__init__(outputs)
        self.engine = engine
        self.subset = subset


def _fmt(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join("-1" if d < 0 else str(d) for d in shape) + "]"


def check_tensors(le: LoadedEngine, inputs: Mapping[str, np.ndarray],
                  max_batch: int) -> dict[str, np.ndarray]:
    """Return the engine's feed, or raise InvalidInput naming the bad tensor."""
    want = le.input_shapes
    missing = sorted(set(want) - set(inputs))
    extra = sorted(set(inputs) - set(want))
    if missing or extra:
        raise InvalidInput(f"model {le.name} takes inputs {', '.join(sorted(want))}; "
                           + (f"missing {', '.join(missing)}" if missing else "")
                           + ("; " if missing and extra else "")
                           + (f"unexpected {', '.join(extra)}" if extra else ""))
    batch: int | None = None
    feed: dict[str, np.ndarray] = {}
    for name in sorted(want):
        arr, dims = inputs[name], want[name]
        expected = (-1, *dims)
        if arr.dtype != np.float32:
            raise InvalidInput(f"input {name}: datatype {kserve_dtype(arr.dtype)}, expected FP32")
        if arr.ndim != len(expected) or any(
                d > 0 and d != a for d, a in zip(dims, arr.shape[1:], strict=True)):
            raise InvalidInput(f"input {name}: shape {list(arr.shape)}, expected {_fmt(expected)}")
        if batch is None:
            batch = arr.shape[0]
        elif arr.shape[0] != batch:
            raise InvalidInput(f"input {name}: batch size {arr.shape[0]} differs from the "
                               f"other inputs' {batch}")
        if not np.isfinite(arr).all():
            raise InvalidInput(f"input {name}: holds NaN or inf values; send finite values "
                               "(the rig endpoint drops such sensors instead)")
        feed[name] = arr
    if batch is None or not 1 <= batch <= max_batch:
        raise InvalidInput(f"batch size {batch} is outside 1..{max_batch} for model {le.name}")
    return feed
