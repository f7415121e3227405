"""KServe v2 HTTP/REST inference bodies, with Triton's binary tensor data extension.

Request: a JSON object, or (binary extension) a JSON header of
``Inference-Header-Content-Length`` bytes followed by the raw tensors of every input whose
``parameters.binary_data_size`` is set, in input order. Response: JSON ``data`` (flat,
row-major) per output, or the same header + raw bytes layout for outputs asked for with
``binary_data`` (per output) or ``binary_data_output`` (whole request).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from rigserve.server import extensions, jsonio
from rigserve.server.errors import InvalidInput, PayloadTooLarge
from rigserve.server.tensors import check_buildable, kserve_dtype, numpy_dtype

HEADER_LENGTH = "inference-header-content-length"


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    #: output name -> binary?; empty means every output, binary per ``binary_default``.
    outputs: dict[str, bool]
    binary_default: bool
    #: The request's ``timeout`` parameter, microseconds (None: none).
    timeout_us: int | None = None


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """tritonclient may gzip/deflate request bodies (``request_compression_algorithm``).

    The body limit holds for the inflated body too: a few KiB of gzip can inflate to
    gigabytes, so at most ``limit + 1`` bytes are ever inflated."""
    # Content codings are case-insensitive, and x-gzip is gzip (RFC 9110 §8.4.1).
    coding = (encoding or "").strip().lower()
    coding = "gzip" if coding == "x-gzip" else coding
    if not coding or coding == "identity":
        return body
    if coding not in ("gzip", "deflate"):
        raise InvalidInput(f"Content-Encoding {encoding!r} is not supported; use gzip or "
                           "deflate")
    try:
        if coding == "gzip":
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
                out = stream.read(limit + 1)
        else:
            inflater = zlib.decompressobj()
            out = inflater.decompress(body, limit + 1)
            if len(out) <= limit and not inflater.eof:
                raise EOFError("the deflate stream ends before its end marker")
    except (OSError, EOFError, zlib.error) as exc:  # EOFError: a truncated stream
        raise InvalidInput(f"body is not valid {coding} data: {exc}") from exc
    if len(out) > limit:
        raise PayloadTooLarge(f"request body inflates past the limit of {limit} bytes "
                              "(RIGSERVE_MAX_BODY_BYTES)")
    return out


def parse_request(body: bytes, header_length: str | None) -> InferRequest:
    json_len = len(body)
    if header_length is not None:
        # ASCII digits only (str.isdigit takes '²' too, which int() refuses), and no more
        # of them than the body's length has (int() refuses strings past 4300 digits).
        if not (header_length.isascii() and header_length.isdigit()
                and len(header_length.lstrip("0")) <= len(str(len(body)))
                and int(header_length) <= len(body)):
            raise InvalidInput(f"Inference-Header-Content-Length {header_length!r} must be an "
                               f"integer no larger than the body ({len(body)} bytes)")
        json_len = int(header_length)
    try:
        head = jsonio.loads(memoryview(body)[:json_len]) if json_len else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request JSON is not valid: {exc}") from exc
    if not isinstance(head, dict):
        raise InvalidInput("request body must be a JSON object with an 'inputs' list")
    raw_inputs = head.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput("request must have a non-empty 'inputs' list")
    binary = memoryview(body)[json_len:]
    inputs, offset = {}, 0
    for spec in raw_inputs:
        name, arr, used = _parse_input(spec, binary, offset)
        if name in inputs:
            raise InvalidInput(f"input {name!r} appears twice")
        inputs[name], offset = arr, offset + used
    if offset != len(binary):
        raise InvalidInput(f"{len(binary) - offset} bytes of binary data follow the inputs "
                           "that no binary_data_size accounts for")
    params = _parameters(head, "the request's", "the request")
    raw_outputs = head.get("outputs") or []
    if not isinstance(raw_outputs, list):
        raise InvalidInput(f"'outputs' must be a list of objects with a 'name', got "
                           f"{_kind(raw_outputs)}")
    binary_default = _flag(params, "binary_data_output", "the request's", False)
    outputs = {}
    for out in raw_outputs:
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise InvalidInput("each entry of 'outputs' must be an object with a 'name'")
        if out["name"] in outputs:  # one answer per name; the gRPC service refuses it too
            raise InvalidInput(f"output {out['name']!r} is requested twice")
        owner = f"output {out['name']}:"
        outputs[out["name"]] = _flag(_parameters(out, owner, f"output {out['name']!r}"),
                                     "binary_data", owner,
                                     binary_default)
    rid = head.get("id")
    if rid is not None and not isinstance(rid, str):
        # Echoed back as given; str() would answer a Python repr such as "{'a': 1}".
        raise InvalidInput(f"'id' must be a string, got {_kind(rid)} {rid!r:.40}")
    return InferRequest(id=rid, inputs=inputs, outputs=outputs,
                        binary_default=binary_default, timeout_us=_timeout(params))


def _kind(value: Any) -> str:
    """A JSON value's type in JSON's words."""
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "an array", dict: "an object"}
    return kinds.get(type(value), "null")


def _parameters(obj: Mapping[str, Any], owner: str, what: str) -> Mapping[str, Any]:
    """``obj``'s 'parameters' ({} when absent), refused unless an object rigserve supports
    (``owner`` and ``what`` name ``obj`` in the errors: "input lidar:", "input 'lidar'")."""
    params = obj.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidInput(f"{owner} 'parameters' must be an object, got {_kind(params)}")
    extensions.refuse_tensor_parameters(extensions.HTTP, what, params)
    return params


def _flag(params: Mapping[str, Any], key: str, owner: str, default: bool) -> bool:
    """A boolean parameter; JSON true / false only, as Triton parses it: ``bool("false")``
    is True, and a string taken for a flag would answer in the other format."""
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"{owner} parameter '{key}' must be true or false, got "
                           f"{_kind(value)} {value!r:.60}")
    return value


def _timeout(params: Mapping[str, Any]) -> int | None:
    """The request's ``timeout`` parameter: microseconds, as tritonclient sends it."""
    value = params.get("timeout")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise InvalidInput(f"the request's parameter 'timeout' must be a non-negative integer "
                           f"(microseconds), got {_kind(value)} {value!r:.60}")
    return value


def _parse_input(spec: Any, binary: memoryview, offset: int) -> tuple[str, np.ndarray, int]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise InvalidInput("each input must be an object with 'name', 'shape', 'datatype'")
    name = spec["name"]
    shape, datatype = spec.get("shape"), spec.get("datatype")
    # JSON true / false are Python ints too, but not dimensions.
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                              and d >= 0 for d in shape):
        raise InvalidInput(f"input {name}: 'shape' must be a list of non-negative integers, "
                           f"got {shape!r}")
    check_buildable(shape, f"input {name}")
    if not isinstance(datatype, str):
        raise InvalidInput(f"input {name}: 'datatype' must be a string such as 'FP32'")
    dtype = numpy_dtype(datatype)
    if dtype == np.dtype(object):
        raise InvalidInput(f"input {name}: BYTES tensors are not accepted; the rig models take "
                           "FP32 tensors")
    count = math.prod(shape)
    size = _parameters(spec, f"input {name}:", f"input {name!r}").get("binary_data_size")
    if size is not None:
        if (not isinstance(size, int) or isinstance(size, bool)
                or size != count * dtype.itemsize):
            raise InvalidInput(f"input {name}: binary_data_size {size!r} does not match shape "
                               f"{shape} of {datatype} ({count * dtype.itemsize} bytes)")
        if offset + size > len(binary):
            raise InvalidInput(f"input {name}: binary data is truncated ({len(binary) - offset} "
                               f"bytes left, {size} needed)")
        # Little-endian on the wire (Triton); copy so the array owns aligned memory.
        arr = np.frombuffer(binary[offset:offset + size], dtype=dtype.newbyteorder("<")).copy()
        return name, arr.astype(dtype, copy=False).reshape(shape), size
    if "data" not in spec:
        raise InvalidInput(f"input {name}: needs 'data' or parameters.binary_data_size")
    arr = _json_data(f"input {name}", spec["data"], datatype, dtype)
    if arr.size != count:
        raise InvalidInput(f"input {name}: 'data' holds {arr.size} values but shape {shape} "
                           f"needs {count}")
    return name, arr.reshape(shape), 0


#: The numpy kinds JSON values of a datatype's family may build, and their words.
_ACCEPTED = {"b": ("b", "true or false"), "i": ("iu", "integers"), "u": ("iu", "integers"),
             "f": ("iuf", "numbers")}
_FOUND = {"U": "strings", "b": "booleans", "f": "non-integer numbers", "i": "integers",
          "u": "integers"}


def _json_data(what: str, data: Any, datatype: str, dtype: np.dtype[Any]) -> np.ndarray:
    """JSON ``data`` (flat or nested) as ``dtype``, holding what Triton reads for the
    datatype: numbers for FP, integers for INT/UINT, true / false for BOOL.

    numpy alone would read ``"0.5"`` and ``true`` as FP32 numbers and answer as if they
    were; building without a dtype first shows what the JSON held (a string anywhere makes
    the whole array strings) and is also faster. A boolean among numbers is promoted by
    numpy before it can be seen, so ``[true, 0.5]`` still passes as ``[1, 0.5]``."""
    kinds, words = _ACCEPTED[dtype.kind]
    try:
        raw = np.asarray(data)
    except (ValueError, TypeError) as exc:  # ragged nesting
        raise InvalidInput(f"{what}: 'data' is not a list of {datatype} values: {exc}") from exc
    if raw.dtype.kind == "O":  # null, an object, or an integer past 64 bits
        bad = _first_non_number(data, bool if dtype.kind == "b" else None)
        if bad is not None:
            raise InvalidInput(f"{what}: 'data' must hold {words} for {datatype}, got "
                               f"{_kind(bad[0])} {bad[0]!r:.40}")
    elif raw.dtype.kind not in kinds:
        raise InvalidInput(f"{what}: 'data' must hold {words} for {datatype}, got "
                           f"{_FOUND.get(raw.dtype.kind, str(raw.dtype))}")
    try:
        # over="raise": a finite 1e300 sent as FP32 is out of range, not "inf" (NaN and
        # infinity tokens stay what they are, for the finite-values check to name).
        with np.errstate(over="raise"):
            if dtype.kind in "iu" and raw.size:
                info, low, high = np.iinfo(dtype), raw.min(), raw.max()
                if low < info.min or high > info.max:
                    raise OverflowError(f"{low if low < info.min else high} is outside "
                                        f"{info.min}..{info.max}")
            return raw.astype(dtype, copy=False)
    except (OverflowError, FloatingPointError) as exc:  # 1000 as INT8, 1e300 as FP32
        raise InvalidInput(f"{what}: a value in 'data' is out of range for {datatype}: "
                           f"{exc}") from exc


def _first_non_number(data: Any, only: type | None) -> tuple[Any] | None:
    """The first value in nested ``data`` that is not a JSON number (not a boolean when
    ``only`` is bool), in a 1-tuple since it may be None; None when every value is."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(reversed(value))
        elif (not isinstance(value, bool) if only is bool
              else isinstance(value, bool) or not isinstance(value, (int, float))):
            return (value,)
    return None


def build_response(model: str, version: str, request: InferRequest,
                   outputs: Mapping[str, np.ndarray],
                   parameters: Mapping[str, Any] | None = None) -> tuple[bytes, int | None]:
    """Response body and, when it has binary parts, the JSON header's length."""
    wanted = request.outputs or dict.fromkeys(outputs, request.binary_default)
    unknown = sorted(set(wanted) - set(outputs))
    if unknown:
        raise InvalidInput(f"unknown output {', '.join(map(repr, unknown))}; outputs are "
                           f"{', '.join(sorted(outputs))}")
    entries, blobs = [], []
    for name, binary in wanted.items():
        arr = np.ascontiguousarray(outputs[name])
        entry: dict[str, Any] = {"name": name, "datatype": kserve_dtype(arr.dtype),
                                 "shape": list(arr.shape)}
        if binary:
            blob = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = arr.reshape(-1).tolist()
        entries.append(entry)
    head: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": entries}
    if request.id is not None:
        head["id"] = request.id
    if parameters:
        head["parameters"] = dict(parameters)
    header = jsonio.dumps(head)
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)
