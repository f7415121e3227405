"""Property-based fuzzing of every request surface of one live server (REST and gRPC).

The property is the team rule: a bad input is the client's mistake, so it is never a
5xx over REST nor INTERNAL / UNKNOWN over gRPC, and a REST 4xx body is
``{"error": "<non-empty message>"}``. Each example is a valid request with one to three
mutations (a field of the wrong type, a huge / negative / bool dimension, a count that
does not match, an odd datatype, out-of-range values, a truncated or corrupted MM-Fi
file, junk parameters), so most examples get past the first checks and reach the
decoders, the router and the engines.

Every bug found here also has a deterministic regression case (test_bad_inputs.py CASES,
tests/grpc, tests/sensors, or the end of this file). Hypothesis derandomizes itself when
it detects CI, so CI runs the same examples each time; locally each run explores, and
``RIGSERVE_FUZZ_SCALE=20`` runs twenty times the examples for a longer hunt.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import math
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rigserve.proto import grpc_service_pb2 as pb
from rigserve.proto import grpc_service_pb2_grpc as pb_grpc
from rigserve.proto import rig_stream_pb2 as rig_pb

from tests.grpc.rig_client import LockStep, rig_frame
from tests.server.live_server import ServerHandle, serve_in_thread
from tests.server.repo_factory import sample_files, sample_raw_frames

FILES = sample_files(seed=4)
RAW = sample_raw_frames(seed=4)
#: Valid raw frames kept small (depth may be any H x W) so each example is cheap.
GOOD_RAW = {**RAW, "depth": np.ascontiguousarray(RAW["depth"][::10, ::10]),
            "lidar": RAW["lidar"][:40], "mmwave": RAW["mmwave"][:20]}
KNOWN = ("depth", "lidar", "mmwave", "wifi")
#: Model-ready input shapes of the tiny repository, without the batch axis.
MODEL_SHAPES = {"depth": [1, 48, 64], "lidar": [256, 4], "mmwave": [64, 6],
                "wifi": [3, 114, 10]}
DATATYPES = ("FP32", "FP16", "FP64", "BOOL", "BYTES", "INT8", "INT16", "INT32", "INT64",
             "UINT8", "UINT16", "UINT32", "UINT64")
RIG_DTYPES = ("uint8", "uint16", "int16", "int32", "int64", "float16", "float32", "float64")
BAD_GRPC = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)

_FUZZ = settings(deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def fuzz(examples: int) -> settings:
    """Settings for a property run; RIGSERVE_FUZZ_SCALE=20 makes a longer bug hunt."""
    return settings(_FUZZ, max_examples=examples * int(os.environ.get("RIGSERVE_FUZZ_SCALE", "1")))


@pytest.fixture(scope="module")
def server(tiny_repo: Path) -> Iterator[ServerHandle]:
    with serve_in_thread(tiny_repo, grpc=True, max_body_bytes=4 << 20,
                         max_modality_bytes=dict.fromkeys(KNOWN, 1 << 20)) as handle:
        yield handle


@pytest.fixture(scope="module")
def http(server: ServerHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def channel(server: ServerHandle) -> Iterator[grpc.Channel]:
    assert server.grpc_target is not None
    with grpc.insecure_channel(server.grpc_target) as ch:
        yield ch


# ---- the properties ---------------------------------------------------------------------

def assert_rest_answer(r: httpx.Response) -> None:
    """Never a 5xx; a 4xx is {"error": "<non-empty>"}."""
    assert r.status_code < 500, f"{r.status_code}: {r.text[:500]}"
    if r.status_code >= 400:
        body = r.json()
        assert set(body) == {"error"}, body
        assert isinstance(body["error"], str)
        assert body["error"].strip(), body


def assert_grpc_refusal(exc: grpc.RpcError) -> None:
    assert exc.code() not in BAD_GRPC, f"{exc.code()}: {exc.details()}"
    assert (exc.details() or "").strip()


def assert_in_band(answer: rig_pb.RigPrediction, sequence: int) -> None:
    assert answer.sequence == sequence
    assert answer.WhichOneof("result") in ("prediction", "error")
    if answer.HasField("error"):
        assert answer.error.code not in ("INTERNAL", "UNKNOWN"), answer.error
        assert answer.error.message.strip()


# ---- junk ---------------------------------------------------------------------------------

HUGE = (2**31, 2**32, 2**53, 2**62, 2**63 - 1)
JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6))
JUNK = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
#: Becomes n nested lists in `dumps`, past the JSON parsers' recursion limits; longer than
#: any text drawn here, so no junk string can look like it.
DEEP_MARK = json.dumps("\0\0DEEP:")[:-1]
DEEP = st.sampled_from((50, 200, 1000, 1100, 5000)).map(lambda n: f"\0\0DEEP:{n}")
JSON_DIMS = (st.integers(0, 4) | st.integers(-3, -1) | st.sampled_from((*HUGE, 2**64, 2**70))
             | st.booleans() | st.sampled_from((1.0, "3", None)))
JSON_SHAPES = st.lists(JSON_DIMS, max_size=5) | JUNK
GRPC_DIMS = st.integers(0, 4) | st.integers(-(2**63), -1) | st.sampled_from(HUGE)
GRPC_SHAPES = st.lists(GRPC_DIMS, max_size=5)
#: One value repeated to fill a tensor (hypothesis drawing thousands of values is slow).
JSON_VALUES = (st.floats(-1, 1) | st.floats(allow_nan=True, allow_infinity=True)
               | st.integers(-(2**70), 2**70) | st.sampled_from((255, 256, -1, 2**63, 2**64))
               | st.booleans() | st.text(max_size=3) | st.none() | st.just([1, 2]))
HEADER_BYTES = st.binary(min_size=1, max_size=6).filter(  # what HTTP lets a header carry
    lambda b: all(0x21 <= c <= 0x7E or c >= 0x80 for c in b))


def dumps(obj: Any) -> bytes:
    """JSON with NaN / Infinity tokens, as Python's json writes them; see DEEP."""
    text = json.dumps(obj, allow_nan=True)
    while DEEP_MARK in text:
        start = text.index(DEEP_MARK)
        end = text.index('"', start + 1)
        n = int(text[start + len(DEEP_MARK):end])
        text = text[:start] + "[" * n + "]" * n + text[end + 1:]
    return text.encode()


def mutate(draw: st.DrawFn, target: Any, mutations: dict[str, Callable[..., Any]]) -> Any:
    """Apply 1-3 mutations chosen by name; each returns the (possibly new) target."""
    for name in draw(st.lists(st.sampled_from(sorted(mutations)), min_size=1, max_size=3)):
        target = mutations[name](draw, target)
    return target


def one_off(draw: st.DrawFn, count: int) -> int:
    return max(0, count + draw(st.sampled_from((-1, 1, -count))))


# ---- REST: KServe v2 infer (JSON) -----------------------------------------------------

def valid_kserve_input(draw: st.DrawFn, name: str) -> dict[str, Any]:
    shape = [draw(st.integers(1, 2)), *MODEL_SHAPES[name]]
    return {"name": name, "shape": shape, "datatype": "FP32",
            "data": [draw(st.floats(-1, 1))] * math.prod(shape)}


def _set(key: str, strategy: st.SearchStrategy[Any]) -> Callable[..., Any]:
    def apply(draw: st.DrawFn, spec: Any) -> Any:
        if isinstance(spec, dict):
            spec[key] = draw(strategy)
        return spec
    return apply


def _set_dim(draw: st.DrawFn, spec: Any) -> Any:
    if isinstance(spec, dict) and isinstance(spec.get("shape"), list) and spec["shape"]:
        spec["shape"][draw(st.integers(0, len(spec["shape"]) - 1))] = draw(JSON_DIMS)
    return spec


def _typed_data(draw: st.DrawFn, spec: Any) -> Any:
    """Another datatype, and values at or past the edges of its range."""
    if isinstance(spec, dict) and isinstance(spec.get("data"), list):
        spec["datatype"] = draw(st.sampled_from(DATATYPES))
        spec["data"] = [draw(JSON_VALUES)] * len(spec["data"])
    return spec


def _one_value(draw: st.DrawFn, spec: Any) -> Any:
    if isinstance(spec, dict) and isinstance(spec.get("data"), list) and spec["data"]:
        spec["data"][draw(st.integers(0, len(spec["data"]) - 1))] = draw(JSON_VALUES)
    return spec


def _data_count(draw: st.DrawFn, spec: Any) -> Any:
    if isinstance(spec, dict) and isinstance(spec.get("data"), list):
        spec["data"] = spec["data"][:one_off(draw, len(spec["data"]))] or [0.5]
    return spec


def _nested_data(draw: st.DrawFn, spec: Any) -> Any:
    if isinstance(spec, dict) and isinstance(spec.get("data"), list) and spec["data"]:
        n = len(spec["data"])
        rows = draw(st.sampled_from([d for d in (2, 3, 4, 7) if n % d == 0] or [1]))
        spec["data"] = np.reshape(np.asarray(spec["data"], dtype=object), (rows, -1)).tolist()
        if draw(st.booleans()):
            spec["data"][0] = spec["data"][0][:-1]  # ragged
    return spec


def _drop(draw: st.DrawFn, spec: Any) -> Any:
    if isinstance(spec, dict) and spec:
        del spec[draw(st.sampled_from(sorted(spec)))]
    return spec


PARAMETERS = (JUNK | st.fixed_dictionaries({"binary_data_size": JUNK | st.integers(-8, 8)})
              | st.fixed_dictionaries({}, optional={"classification": JUNK,
                                                    "shared_memory_region": JUNK,
                                                    "binary_data": JUNK}))
INPUT_MUTATIONS: dict[str, Callable[..., Any]] = {
    "name": _set("name", st.sampled_from(("thermal", "", "LIDAR")) | JUNK),
    "shape": _set("shape", JSON_SHAPES),
    "dim": _set_dim,
    "datatype": _set("datatype", st.sampled_from((*DATATYPES, "fp32", "FLOAT", "")) | JUNK),
    "typed-data": _typed_data,
    "one-value": _one_value,
    "data-count": _data_count,
    "data-nested": _nested_data,
    "data-junk": _set("data", JUNK | DEEP),
    "parameters": _set("parameters", PARAMETERS),
    "drop-key": _drop,
    "replace": lambda draw, _spec: draw(JUNK),
}


def _mutate_an_input(draw: st.DrawFn, body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("inputs"), list) and body["inputs"]:
        i = draw(st.integers(0, len(body["inputs"]) - 1))
        body["inputs"][i] = mutate(draw, body["inputs"][i], INPUT_MUTATIONS)
    return body


def _duplicate_input(draw: st.DrawFn, body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("inputs"), list) and body["inputs"]:
        body["inputs"].append(copy.deepcopy(body["inputs"][0]))
    return body


OUTPUTS = (JUNK | st.lists(st.fixed_dictionaries(
    {"name": st.sampled_from(("joints", "action_logits", "pose")) | JUNK},
    optional={"parameters": PARAMETERS}), max_size=3))
BODY_MUTATIONS: dict[str, Callable[..., Any]] = {
    **{f"input-{k}": _mutate_an_input for k in range(4)},  # the most varied: weigh it up
    "inputs": _set("inputs", JUNK | st.just([])),
    "duplicate": _duplicate_input,
    "outputs": _set("outputs", OUTPUTS),
    "parameters": _set("parameters", PARAMETERS),
    "id": _set("id", JUNK),
    "body": lambda draw, _body: draw(JUNK | DEEP),
}


@st.composite
def kserve_body(draw: st.DrawFn) -> Any:
    names = draw(st.lists(st.sampled_from(KNOWN), min_size=1, max_size=2, unique=True))
    body = {"inputs": [valid_kserve_input(draw, n) for n in names]}
    return mutate(draw, body, BODY_MUTATIONS)


@fuzz(150)
@given(body=kserve_body(), model=st.sampled_from(("rig", "rig", "rig.lidar", "rig.depth")))
def test_kserve_json_bodies_never_answer_5xx(http: httpx.Client, body: Any, model: str) -> None:
    assert_rest_answer(http.post(f"/v2/models/{model}/infer", content=dumps(body),
                                 headers={"content-type": "application/json"}))


# ---- REST: KServe v2 infer (binary tensor extension) ----------------------------------

def _binary_size(draw: st.DrawFn, head: dict[str, Any]) -> dict[str, Any]:
    spec = head["inputs"][draw(st.integers(0, len(head["inputs"]) - 1))]
    params = spec.get("parameters") if isinstance(spec, dict) else None
    if isinstance(params, dict) and isinstance(params.get("binary_data_size"), int):
        size = params["binary_data_size"]
        params["binary_data_size"] = draw(
            st.sampled_from((size + 4, size - 4, 0, -size, True)) | JUNK)
    return head


def _binary_input(draw: st.DrawFn, head: dict[str, Any]) -> dict[str, Any]:
    i = draw(st.integers(0, len(head["inputs"]) - 1))
    mutations = {k: INPUT_MUTATIONS[k] for k in ("name", "shape", "dim", "datatype",
                                                 "parameters", "drop-key")}
    head["inputs"][i] = mutate(draw, head["inputs"][i], mutations)
    return head


@st.composite
def binary_request(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(KNOWN), min_size=1, max_size=2, unique=True))
    inputs, blobs = [], []
    for name in names:
        shape = [1, *MODEL_SHAPES[name]]
        blob = np.full(math.prod(shape), draw(st.floats(-1, 1)), "<f4").tobytes()
        inputs.append({"name": name, "shape": shape, "datatype": "FP32",
                       "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    head = mutate(draw, {"inputs": inputs}, {"size": _binary_size, "input": _binary_input,
                                             "none": lambda _draw, h: h})
    raw_head = json.dumps(head).encode()
    body = raw_head + b"".join(blobs)
    tail = draw(st.sampled_from(("as-is", "as-is", "extra", "short")))
    body = body + b"\0" * 3 if tail == "extra" else body[:-3] if tail == "short" else body
    n = len(raw_head)
    length = draw(st.sampled_from([str(v).encode() for v in (n, n, n, n - 1, n + 1,
                                                             len(body) + 1, -1, 0, 10**20)]
                                  + [b"", b"0x10", b"1e3", b"+5", b"\xb2", b"\xb9\xb2"])
                  | HEADER_BYTES)
    headers: dict[str, Any] = {"content-type": "application/octet-stream"}
    if length:
        headers["inference-header-content-length"] = length
    encoding = draw(st.sampled_from((None, None, None, "gzip", "deflate", "gzip-cut",
                                     "deflate-cut", "br")))
    if encoding in ("gzip", "gzip-cut"):
        body = gzip.compress(body)
    elif encoding in ("deflate", "deflate-cut"):
        body = zlib.compress(body)
    if encoding and encoding.endswith("-cut"):
        body = body[:draw(st.integers(0, len(body) - 1))]
        encoding = encoding[:-4]
    if encoding:
        headers["content-encoding"] = encoding
    return body, headers


@fuzz(100)
@given(request=binary_request())
def test_kserve_binary_bodies_never_answer_5xx(http: httpx.Client,
                                               request: tuple[bytes, dict[str, Any]]) -> None:
    body, headers = request
    assert_rest_answer(http.post("/v2/models/rig/infer", content=body, headers=headers))


# ---- REST: the rig endpoint -----------------------------------------------------------

def png_with_header(draw: st.DrawFn) -> bytes:
    """A well-framed PNG whose IHDR says anything: huge sizes, other depths and colours."""
    w, h = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
    ihdr = struct.pack(">IIBBBBB", w, h, draw(st.sampled_from((1, 8, 16, 3))),
                       draw(st.sampled_from((0, 2, 3, 4, 6, 7))), 0, 0,
                       draw(st.sampled_from((0, 1))))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(payload, zlib.crc32(kind))
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(draw(st.binary(max_size=64))))
            + chunk(b"IEND", b""))


@st.composite
def mutated_file(draw: st.DrawFn, modality: str | None = None) -> bytes:
    """An MM-Fi file (this modality's or any) truncated, corrupted, spliced or replaced."""
    data = bytearray(FILES[modality or draw(st.sampled_from(KNOWN))])
    op = draw(st.sampled_from(("truncate", "flip", "flip-head", "flip-head", "splice",
                               "garbage", "same", "png-header")))
    if op == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif op in ("flip", "flip-head"):
        top = min(len(data), 200) if op == "flip-head" else len(data)
        for _ in range(draw(st.integers(1, 6))):
            data[draw(st.integers(0, top - 1))] = draw(st.integers(0, 255))
    elif op == "splice":
        at = draw(st.integers(0, min(len(data), 300)))
        data[at:at] = draw(st.binary(max_size=32))
    elif op == "garbage":
        data = bytearray(draw(st.binary(max_size=256)))
    elif op == "png-header":
        data = bytearray(png_with_header(draw))
    return bytes(data)


def valid_rig_frame(draw: st.DrawFn, modality: str) -> Any:
    raw = GOOD_RAW[modality]
    kind = draw(st.sampled_from(("nested", "data", "b64", "file")))
    if kind == "nested":
        return raw.tolist()
    if kind == "data":
        return {"data": raw.tolist(), "dtype": raw.dtype.name}
    if kind == "b64":
        return {"b64": base64.b64encode(raw.astype(raw.dtype.newbyteorder("<")).tobytes())
                .decode(), "dtype": raw.dtype.name, "shape": list(raw.shape)}
    return {"file_b64": base64.b64encode(FILES[modality]).decode()}


def _fill_frame(draw: st.DrawFn, frame: Any) -> Any:
    """The same shape, every value replaced: junk, out of range for the dtype, NaN..."""
    value = draw(JSON_VALUES)

    def filled(nested: list[Any]) -> Any:
        try:
            out = np.empty(np.shape(nested), dtype=object)
        except ValueError:  # ragged (an earlier mutation): fill the outer list
            return [value] * len(nested)
        out.fill(value)
        return out.tolist()

    if isinstance(frame, list):
        return filled(frame)
    if isinstance(frame, dict) and isinstance(frame.get("data"), list):
        frame["data"] = filled(frame["data"])
    return frame


def _frame_b64(draw: st.DrawFn, frame: Any) -> Any:
    if isinstance(frame, dict) and isinstance(frame.get("b64"), str):
        try:
            data = base64.b64decode(frame["b64"], validate=True)
        except ValueError:  # already junk (an earlier mutation)
            data = b""
        frame["b64"] = draw(st.sampled_from((
            base64.b64encode(data[:one_off(draw, len(data))]).decode(),
            frame["b64"][:-1], "@@", "")) | JUNK)
    return frame


def _frame_file(draw: st.DrawFn, _frame: Any) -> Any:
    return {"file_b64": base64.b64encode(draw(mutated_file())).decode()}


def _frame_shape(draw: st.DrawFn, frame: Any) -> Any:
    if isinstance(frame, list):
        flat = np.asarray(frame, dtype=object).reshape(-1)
        rows = draw(st.sampled_from([d for d in (2, 4, 5, 6) if flat.size % d == 0] or [1]))
        return flat.reshape(rows, -1).tolist()
    if isinstance(frame, dict) and "shape" in frame:
        frame["shape"] = draw(JSON_SHAPES)
    return frame


FRAME_MUTATIONS: dict[str, Callable[..., Any]] = {
    "dtype": _set("dtype", st.sampled_from((*RIG_DTYPES, "bool", "complex64", "object", ""))
                  | JUNK),
    "shape": _frame_shape,
    "dim": _set_dim,
    "fill": _fill_frame,
    "b64": _frame_b64,
    "file": _frame_file,
    "drop-key": _drop,
    "replace": lambda draw, _frame: draw(JUNK | DEEP),
}
FRAME_NAMES = st.sampled_from((*KNOWN, "wifi-csi", "thermal", "rgb")) | st.text(max_size=5)


def _mutate_a_frame(draw: st.DrawFn, body: Any) -> Any:
    frames = body.get("frames") if isinstance(body, dict) else None
    if isinstance(frames, dict) and frames:
        name = draw(st.sampled_from(sorted(frames)))
        frames[name] = mutate(draw, frames[name], FRAME_MUTATIONS)
    return body


def _rename_frame(draw: st.DrawFn, body: Any) -> Any:
    frames = body.get("frames") if isinstance(body, dict) else None
    if isinstance(frames, dict) and frames:
        frames[draw(FRAME_NAMES)] = frames.pop(draw(st.sampled_from(sorted(frames))))
    return body


RIG_BODY_MUTATIONS: dict[str, Callable[..., Any]] = {
    **{f"frame-{k}": _mutate_a_frame for k in range(4)},
    "rename": _rename_frame,
    "stale": _set("stale", st.lists(FRAME_NAMES, max_size=2) | JUNK),
    "frames": _set("frames", JUNK),
    "body": lambda draw, _body: draw(JUNK | DEEP),
}


@st.composite
def rig_json_body(draw: st.DrawFn) -> Any:
    names = draw(st.lists(st.sampled_from(KNOWN), min_size=1, max_size=3, unique=True))
    body = {"frames": {n: valid_rig_frame(draw, n) for n in names}}
    return mutate(draw, body, RIG_BODY_MUTATIONS)


@fuzz(150)
@given(body=rig_json_body())
def test_rig_json_frames_never_answer_5xx(http: httpx.Client, body: Any) -> None:
    assert_rest_answer(http.post("/v1/rigs/r1/infer", content=dumps(body),
                                 headers={"content-type": "application/json"}))


@fuzz(60)
@given(files=st.dictionaries(st.sampled_from((*KNOWN, "wifi-csi", "thermal", "x y")),
                             mutated_file(), min_size=1, max_size=3),
       filename=st.sampled_from(("frame001.png", "frame001.bin", "frame001.mat", "x")))
def test_rig_multipart_files_never_answer_5xx(http: httpx.Client, files: dict[str, bytes],
                                              filename: str) -> None:
    upload = {field: (filename, data) for field, data in files.items()}
    assert_rest_answer(http.post("/v1/rigs/r1/infer", files=upload))


# ---- gRPC: inference.GRPCInferenceService/ModelInfer ---------------------------------

CONTENT_VALUES = {
    "bool_contents": st.booleans(), "int_contents": st.integers(-(2**31), 2**31 - 1),
    "int64_contents": st.integers(-(2**63), 2**63 - 1), "uint_contents": st.integers(0, 2**32 - 1),
    "uint64_contents": st.integers(0, 2**64 - 1),
    "fp32_contents": st.floats(width=32, allow_nan=True, allow_infinity=True)
    | st.floats(-1, 1, width=32),
    "fp64_contents": st.floats(allow_nan=True, allow_infinity=True) | st.floats(-1, 1),
    "bytes_contents": st.binary(max_size=4),
}
FIELD_OF = {"BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
            "UINT32": "uint_contents", "UINT64": "uint64_contents", "INT8": "int_contents",
            "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
            "FP16": "fp32_contents", "FP32": "fp32_contents", "FP64": "fp64_contents",
            "BYTES": "bytes_contents"}


def _tensor(draw: st.DrawFn, request: pb.ModelInferRequest) -> int:
    return draw(st.integers(0, len(request.inputs) - 1)) if request.inputs else -1


def _g_datatype(draw: st.DrawFn, request: pb.ModelInferRequest) -> pb.ModelInferRequest:
    i = _tensor(draw, request)
    if i >= 0:
        request.inputs[i].datatype = draw(st.sampled_from((*DATATYPES, "", "fp32", "STRING")))
    return request


def _g_typed(draw: st.DrawFn, request: pb.ModelInferRequest) -> pb.ModelInferRequest:
    """Typed contents of some datatype (or the wrong field), values from the field's range."""
    i = _tensor(draw, request)
    if i >= 0:
        tensor = request.inputs[i]
        tensor.datatype = draw(st.sampled_from(DATATYPES))
        field = draw(st.sampled_from((FIELD_OF[tensor.datatype], *CONTENT_VALUES)))
        count = math.prod(tensor.shape) if 0 <= math.prod(tensor.shape) <= 8192 else 4
        tensor.contents.Clear()
        getattr(tensor.contents, field).extend([draw(CONTENT_VALUES[field])] * count)
        del request.raw_input_contents[:]
    return request


def _g_dim(draw: st.DrawFn, request: pb.ModelInferRequest) -> pb.ModelInferRequest:
    i = _tensor(draw, request)
    if i >= 0 and request.inputs[i].shape:
        shape = request.inputs[i].shape
        shape[draw(st.integers(0, len(shape) - 1))] = draw(GRPC_DIMS)
    return request


def _g_shape(draw: st.DrawFn, request: pb.ModelInferRequest) -> pb.ModelInferRequest:
    i = _tensor(draw, request)
    if i >= 0:
        del request.inputs[i].shape[:]
        request.inputs[i].shape.extend(draw(GRPC_SHAPES))
    return request


def _g_raw(draw: st.DrawFn, request: pb.ModelInferRequest) -> pb.ModelInferRequest:
    """Raw bytes of the wrong length, a raw entry too many or too few, BYTES elements."""
    what = draw(st.sampled_from(("length", "count", "bytes")))
    if what == "count" or not request.raw_input_contents:
        if request.raw_input_contents and draw(st.booleans()):
            del request.raw_input_contents[-1]
        else:
            request.raw_input_contents.append(b"\0" * draw(st.integers(0, 8)))
        return request
    i = draw(st.integers(0, len(request.raw_input_contents) - 1))
    raw = request.raw_input_contents[i]
    if what == "length":
        request.raw_input_contents[i] = raw[:one_off(draw, len(raw))] + b"\0" * (
            draw(st.integers(0, 1)))
    elif i < len(request.inputs):
        request.inputs[i].datatype = "BYTES"
        items = draw(st.lists(st.integers(0, 4), max_size=6))
        request.raw_input_contents[i] = b"".join(struct.pack("<I", n) + b"x" * n
                                                 for n in items) + draw(st.binary(max_size=2))
    return request


def _g_parameters(draw: st.DrawFn, request: pb.ModelInferRequest) -> pb.ModelInferRequest:
    key = draw(st.sampled_from(("priority", "timeout", "binary_data_output", "")))
    which = draw(st.sampled_from(("bool_param", "int64_param", "uint64_param",
                                  "string_param", "double_param")))
    value = draw({"bool_param": st.booleans(),
                  "int64_param": st.integers(-(2**63), 2**63 - 1),
                  "uint64_param": st.integers(0, 2**64 - 1) | st.integers(1, 10**7),
                  "string_param": st.text(max_size=4),
                  "double_param": st.floats(allow_nan=True)}[which])
    setattr(request.parameters[key], which, value)
    return request


def _g_outputs(draw: st.DrawFn, request: pb.ModelInferRequest) -> pb.ModelInferRequest:
    for name in draw(st.lists(st.sampled_from(("joints", "action_logits", "pose", "")),
                              min_size=1, max_size=2)):
        request.outputs.add(name=name)
    return request


def _g_model(draw: st.DrawFn, request: pb.ModelInferRequest) -> pb.ModelInferRequest:
    request.model_name = draw(st.sampled_from(("rig.lidar", "rig.depth+wifi", "nope", "")))
    request.model_version = draw(st.sampled_from(("", "1", "2", "latest")))
    return request


def _g_name(draw: st.DrawFn, request: pb.ModelInferRequest) -> pb.ModelInferRequest:
    i = _tensor(draw, request)
    if i >= 0:
        request.inputs[i].name = draw(st.sampled_from((*KNOWN, "thermal", "")))
    return request


GRPC_MUTATIONS: dict[str, Callable[..., Any]] = {
    "datatype": _g_datatype, "typed": _g_typed, "typed-2": _g_typed, "dim": _g_dim,
    "shape": _g_shape, "raw": _g_raw, "raw-2": _g_raw, "parameters": _g_parameters,
    "outputs": _g_outputs, "model": _g_model, "name": _g_name,
}


@st.composite
def infer_request(draw: st.DrawFn) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="rig", id=draw(st.text(max_size=8)))
    use_raw = draw(st.booleans())
    for name in draw(st.lists(st.sampled_from(KNOWN), min_size=1, max_size=2, unique=True)):
        shape = [draw(st.integers(1, 2)), *MODEL_SHAPES[name]]
        tensor = request.inputs.add(name=name, datatype="FP32", shape=shape)
        values = np.full(math.prod(shape), draw(st.floats(-1, 1)), np.float32)
        if use_raw:
            request.raw_input_contents.append(values.astype("<f4").tobytes())
        else:
            tensor.contents.fp32_contents.extend(values.tolist())
    return mutate(draw, request, GRPC_MUTATIONS)


@fuzz(150)
@given(request=infer_request())
def test_grpc_model_infer_never_answers_internal(channel: grpc.Channel,
                                                 request: pb.ModelInferRequest) -> None:
    try:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    except grpc.RpcError as exc:
        assert_grpc_refusal(exc)


# ---- gRPC: rigserve.v1.RigStream -----------------------------------------------------

def _s_tensor(draw: st.DrawFn, frame: rig_pb.RigFrame) -> rig_pb.RigFrame:
    """A raw tensor payload with junk in one of its fields."""
    name = draw(st.sampled_from(KNOWN))
    raw = GOOD_RAW[name]
    tensor = rig_pb.Tensor(dtype=raw.dtype.name, shape=list(raw.shape),
                           data=raw.astype(raw.dtype.newbyteorder("<")).tobytes())
    what = draw(st.sampled_from(("dtype", "dim", "shape", "length", "fill")))
    if what == "dtype":
        tensor.dtype = draw(st.sampled_from((*RIG_DTYPES, "FP32", "bool", "object", "")))
    elif what == "dim":
        tensor.shape[draw(st.integers(0, len(tensor.shape) - 1))] = draw(GRPC_DIMS)
    elif what == "shape":
        del tensor.shape[:]
        tensor.shape.extend(draw(GRPC_SHAPES))
    elif what == "length":
        tensor.data = tensor.data[:one_off(draw, len(tensor.data))]
    else:  # NaN, inf, zeros or huge values in every element
        tensor.data = draw(st.sampled_from((b"\0", b"\xff", b"\x7f", b"\x3f"))) * len(tensor.data)
    frame.sensors[name].tensor.CopyFrom(tensor)
    return frame


def _s_file(draw: st.DrawFn, frame: rig_pb.RigFrame) -> rig_pb.RigFrame:
    name = draw(st.sampled_from(KNOWN))
    frame.sensors[name].file = draw(mutated_file(draw(st.sampled_from((name, None)))))
    return frame


def _s_empty(draw: st.DrawFn, frame: rig_pb.RigFrame) -> rig_pb.RigFrame:
    frame.sensors[draw(st.sampled_from(KNOWN))].SetInParent()  # neither file nor tensor
    return frame


def _s_unknown(draw: st.DrawFn, frame: rig_pb.RigFrame) -> rig_pb.RigFrame:
    frame.sensors[draw(st.sampled_from(("thermal", "", "rgb")))].file = FILES["lidar"]
    return frame


def _s_time(draw: st.DrawFn, frame: rig_pb.RigFrame) -> rig_pb.RigFrame:
    frame.capture_time = draw(st.sampled_from((math.nan, math.inf, -math.inf, 1e-4, 0.0)))
    return frame


def _s_header(draw: st.DrawFn, frame: rig_pb.RigFrame) -> rig_pb.RigFrame:
    frame.rig_id = draw(st.sampled_from(("other", "")))
    frame.model = draw(st.sampled_from(("", "nope", "rig.lidar")))
    return frame


STREAM_MUTATIONS: dict[str, Callable[..., Any]] = {
    "tensor": _s_tensor, "tensor-2": _s_tensor, "file": _s_file, "file-2": _s_file,
    "empty": _s_empty, "unknown": _s_unknown, "time": _s_time, "header": _s_header,
}


@st.composite
def bad_rig_frame(draw: st.DrawFn) -> rig_pb.RigFrame:
    names = draw(st.lists(st.sampled_from(KNOWN), max_size=2, unique=True))
    frame = rig_frame(1, draw(st.floats(1e-3, 1e3)), {n: GOOD_RAW[n] for n in names})
    return mutate(draw, frame, STREAM_MUTATIONS)


@fuzz(60)
@given(bad=st.lists(bad_rig_frame(), min_size=1, max_size=2))
def test_rig_stream_answers_bad_frames_in_band_and_stays_open(
        channel: grpc.Channel, bad: list[rig_pb.RigFrame]) -> None:
    stream = LockStep(channel)
    try:
        first = stream.send(rig_frame(0, 1e-3, {"lidar": GOOD_RAW["lidar"]}))
        assert first.HasField("prediction"), first
        for i, frame in enumerate(bad, start=1):
            frame.sequence = i
            assert_in_band(stream.send(frame), i)
        after = stream.send(rig_frame(9, 1e6, GOOD_RAW))
    except grpc.RpcError as exc:
        pytest.fail(f"the stream ended: {exc.code()}: {exc.details()}")
    assert_in_band(after, 9)
    assert stream.close() == []
    if after.HasField("error"):
        # Known, not fixed here: a frame naming an unknown sensor poisons the stream
        # (see test_an_unknown_sensor_on_one_frame_does_not_poison_the_stream).
        assert "unknown modality" in after.error.message, after.error
        assert any(set(f.sensors) - set(KNOWN) for f in bad)


# ---- deterministic cases for what the stream property found ----------------------------

def _stream(channel: grpc.Channel, frames: list[rig_pb.RigFrame]) -> list[rig_pb.RigPrediction]:
    stream = LockStep(channel)
    answers = [stream.send(frame) for frame in frames]
    assert stream.close() == []  # the stream ended cleanly, not with an error status
    return answers


@pytest.mark.parametrize("bad_time", [math.inf, math.nan])
def test_a_non_finite_capture_time_is_refused_in_band_and_the_stream_goes_on(
        channel: grpc.Channel, bad_time: float) -> None:
    # inf used to become the stream's last time: every later frame "went back in time".
    ok, bad, after = _stream(channel, [
        rig_frame(0, 1.0, {"lidar": GOOD_RAW["lidar"]}),
        rig_frame(1, bad_time, {"lidar": GOOD_RAW["lidar"]}),
        rig_frame(2, 1.1, {"wifi": GOOD_RAW["wifi"]})])
    assert ok.prediction.subset == "lidar"
    assert bad.error.code == "INVALID_ARGUMENT"
    assert f"capture_time {bad_time} is not a finite number of seconds" in bad.error.message
    assert after.prediction.subset == "lidar+wifi"  # lidar held from frame 0


def test_undecodable_payloads_are_refused_in_band_and_the_stream_goes_on(
        channel: grpc.Channel) -> None:
    # Each of these ended the stream INTERNAL (numpy reshape, scipy IndexError) or, for
    # the .mat with one byte changed, killed the server process (scipy segfault).
    empty_unbuildable = rig_frame(1, 1.1, {})
    empty_unbuildable.sensors["lidar"].tensor.CopyFrom(
        rig_pb.Tensor(dtype="float64", shape=[2**62, 2**62, 0], data=b""))
    bad_mat = bytearray(FILES["wifi"])
    bad_mat[193] = 0xEA  # the data element's type code: miDOUBLE becomes 59913
    answers = _stream(channel, [
        rig_frame(0, 1.0, {"mmwave": GOOD_RAW["mmwave"]}),
        empty_unbuildable,
        rig_frame(2, 1.2, {"wifi": bytes(bad_mat)}),
        rig_frame(3, 1.3, {"wifi": FILES["wifi"][:2]}),
        rig_frame(4, 1.4, {"lidar": GOOD_RAW["lidar"]})])
    assert answers[1].error.code == "INVALID_ARGUMENT"
    assert "shape [4611686018427387904, 4611686018427387904, 0] is too large" in (
        answers[1].error.message)
    for answer in answers[2:4]:  # the wifi file is dropped; mmwave is still held
        assert answer.prediction.subset == "mmwave"
        assert answer.prediction.dropped["wifi"] == "decode"
    assert answers[4].prediction.subset == "lidar+mmwave"


def test_an_unknown_sensor_on_one_frame_does_not_poison_the_stream(
        channel: grpc.Channel) -> None:
    _, unknown, after = _stream(channel, [
        rig_frame(0, 1.0, {"lidar": GOOD_RAW["lidar"]}),
        rig_frame(1, 1.1, {"thermal": FILES["lidar"], "lidar": GOOD_RAW["lidar"]}),
        rig_frame(2, 5.0, GOOD_RAW)])
    assert "unknown modality 'thermal'" in unknown.error.message
    assert after.HasField("prediction"), after.error.message


def test_an_oversized_frame_does_not_poison_the_stream(channel: grpc.Channel) -> None:
    huge = np.tile(GOOD_RAW["lidar"], (1200, 1))  # 48000 points, 1.15 MB > the 1 MiB limit
    _, big, after = _stream(channel, [
        rig_frame(0, 1.0, {"wifi": GOOD_RAW["wifi"]}),
        rig_frame(1, 1.1, {"lidar": huge}),
        rig_frame(2, 5.0, {"wifi": GOOD_RAW["wifi"]})])
    assert big.error.code == "RESOURCE_EXHAUSTED"
    assert after.HasField("prediction"), after.error.message
