"""KServe v2 tensors on gRPC: datatype names, raw bytes and typed contents <-> numpy.

The Open Inference Protocol names datatypes as strings (``FP32``, ``INT64``, ``BYTES``);
raw tensor bytes are little-endian and row-major, and a ``BYTES`` tensor is serialized
as a 4-byte little-endian length before each element (KServe v2 "Tensor Data", Triton's
binary data extension). Typed ``contents`` use the widest field of a kind: ``int_contents``
for INT8/16/32, ``uint_contents`` for UINT8/16/32, ``fp32_contents`` also carries FP16.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rigserve.proto import grpc_service_pb2 as pb
from rigserve.server import extensions
from rigserve.server.errors import InvalidInput, some_names
from rigserve.server.tensors import (
    array_from_le_bytes,
    kserve_dtype,
    numpy_dtype,
    tensor_shape,
)


@dataclass(frozen=True)
class Datatype:
    name: str
    dtype: np.dtype[Any]
    contents_field: str


#: KServe datatype -> the InferTensorContents field that carries it; the datatype <-> numpy
#: mapping itself is `server.tensors`', shared with REST.
_CONTENTS_FIELD = {
    "BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
    "UINT32": "uint_contents", "UINT64": "uint64_contents", "INT8": "int_contents",
    "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
    "FP16": "fp32_contents", "FP32": "fp32_contents", "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
#: KServe datatype name -> little-endian numpy dtype and its contents field.
DATATYPES: dict[str, Datatype] = {
    name: Datatype(name, numpy_dtype(name).newbyteorder("<"), field)
    for name, field in _CONTENTS_FIELD.items()
}


def datatype_of(array: np.ndarray) -> str:
    """The KServe datatype name for a numpy array (strings travel as BYTES)."""
    return "BYTES" if array.dtype.kind in "OSU" else kserve_dtype(array.dtype)


def _lookup(name: str, tensor: str) -> Datatype:
    try:
        return DATATYPES[name]
    except KeyError:
        raise InvalidInput(f"input {tensor!r}: unknown datatype {name!r}; "
                           f"accepted: {', '.join(DATATYPES)}") from None


def _decode_bytes_elements(raw: bytes, count: int, tensor: str) -> np.ndarray:
    # Every element has its 4-byte length: check before allocating `count` slots, which a
    # shape such as [2**40] would make terabytes.
    if count > len(raw) // 4:
        raise InvalidInput(f"input {tensor!r}: BYTES data of {len(raw)} bytes holds at most "
                           f"{len(raw) // 4} elements (each has a 4-byte length); the shape "
                           f"needs {count}")
    out = np.empty(count, dtype=object)
    offset = 0
    for i in range(count):
        if offset + 4 > len(raw):
            raise InvalidInput(f"input {tensor!r}: BYTES data ends after {i} of {count} elements")
        (n,) = struct.unpack_from("<I", raw, offset)
        out[i] = raw[offset + 4: offset + 4 + n]
        offset += 4 + n
    if offset != len(raw):
        raise InvalidInput(f"input {tensor!r}: {len(raw) - offset} bytes left after "
                           f"{count} BYTES elements")
    return out


def decode_raw(name: str, datatype: str, shape: Sequence[int], raw: bytes) -> np.ndarray:
    """One input from ``raw_input_contents``."""
    dt = _lookup(datatype, name)
    if dt.name != "BYTES":
        return array_from_le_bytes(raw, dt.dtype, shape, what=f"input {name!r}",
                                   type_name=dt.name, unit="raw bytes")
    dims = tensor_shape(shape, f"input {name!r}")
    return _decode_bytes_elements(raw, math.prod(dims), name).reshape(dims)


def decode_contents(name: str, datatype: str, shape: Sequence[int],
                    contents: pb.InferTensorContents) -> np.ndarray:
    """One input from its typed ``contents`` field."""
    dt = _lookup(datatype, name)
    dims = tensor_shape(shape, f"input {name!r}")
    values = list(getattr(contents, dt.contents_field))
    count = math.prod(dims)
    if len(values) != count:
        raise InvalidInput(f"input {name!r}: shape {list(dims)} needs {count} values in "
                           f"contents.{dt.contents_field}, got {len(values)}")
    if dt.name == "BYTES":
        return np.array(values, dtype=object).reshape(dims)
    try:
        return np.asarray(values, dtype=dt.dtype.newbyteorder("=")).reshape(dims)
    except OverflowError as exc:  # the field is wider than the type: 1000 in UINT8
        raise InvalidInput(f"input {name!r}: a value in contents.{dt.contents_field} is out "
                           f"of range for {dt.name}: {exc}") from exc


def encode_raw(array: np.ndarray) -> bytes:
    """Raw little-endian bytes for ``raw_output_contents``."""
    if datatype_of(array) == "BYTES":
        parts = []
        for item in array.reshape(-1):
            data = item if isinstance(item, bytes) else str(item).encode()
            parts.append(struct.pack("<I", len(data)) + data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def decode_inputs(request: pb.ModelInferRequest) -> dict[str, np.ndarray]:
    """All inputs of a ModelInferRequest, from raw bytes or typed contents."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(f"raw_input_contents has {len(raw)} entries for "
                           f"{len(request.inputs)} inputs; send one per input, in order")
    inputs: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(request.inputs):
        if tensor.name in inputs:
            raise InvalidInput(f"input {tensor.name!r} appears twice in the request")
        if raw and tensor.HasField("contents"):
            raise InvalidInput(f"input {tensor.name!r}: has both contents and "
                               "raw_input_contents; send one of them (raw_input_contents "
                               "for every input, or contents for every input)")
        if raw:
            inputs[tensor.name] = decode_raw(tensor.name, tensor.datatype, tensor.shape, raw[i])
        else:
            inputs[tensor.name] = decode_contents(tensor.name, tensor.datatype, tensor.shape,
                                                  tensor.contents)
    return inputs


def encode_outputs(outputs: Mapping[str, np.ndarray], response: pb.ModelInferResponse,
                   requested: Sequence[str] = ()) -> None:
    """Fill ``response`` with ``outputs`` (only ``requested`` ones when given), raw bytes."""
    names = list(requested) or sorted(outputs)
    unknown = [n for n in names if n not in outputs]
    if unknown:
        raise InvalidInput(f"requested outputs {some_names(unknown)} do not exist; "
                           f"available: {sorted(outputs)}")
    for name in names:
        array = np.asarray(outputs[name])
        response.outputs.add(name=name, datatype=datatype_of(array), shape=list(array.shape))
        response.raw_output_contents.append(encode_raw(array))


def requested_outputs(request: pb.ModelInferRequest) -> list[str]:
    """The output names asked for (empty: every output), refused before the model runs
    when one is named twice: one answer per name, as REST answers."""
    names = [o.name for o in request.outputs]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidInput(f"output {name!r} is requested twice; name each output once")
        seen.add(name)
    return names


def refuse_unsupported(request: pb.ModelInferRequest) -> None:
    """Raise InvalidInput when an input or requested output asks for an extension rigserve
    does not implement (tritonclient's ``class_count``, shared-memory regions)."""
    for t in request.inputs:
        extensions.refuse_tensor_parameters(extensions.GRPC, f"input {t.name!r}", t.parameters)
    for o in request.outputs:
        extensions.refuse_tensor_parameters(extensions.GRPC, f"output {o.name!r}", o.parameters)


def parameter_value(param: pb.InferParameter) -> bool | int | float | str | None:
    """The Python value of an InferParameter, whichever oneof field the client set."""
    which = param.WhichOneof("parameter_choice")
    return None if which is None else getattr(param, which)


def read_parameters(params: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    """Request parameters as sent, checked where rigserve acts on them.

    tritonclient sends ``priority`` as uint64_param and ``timeout`` (microseconds) as
    int64_param; both must be non-negative integers.
    """
    values = {key: parameter_value(p) for key, p in params.items()}
    for key in ("priority", "timeout"):
        value = values.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise InvalidInput(f"parameter {key!r} must be a non-negative integer "
                               f"(uint64_param or int64_param), got {value!r}")
    return values
