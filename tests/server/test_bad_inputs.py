"""Every bad input is a 4xx whose {"error"} names what was wrong and what is accepted."""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from typing import Any

import httpx
import numpy as np
import pytest

from tests.sensors.test_formats import png_declaring
from tests.server.live_server import ServerHandle
from tests.server.repo_factory import sample_files, sample_raw_frames

RAW = sample_raw_frames(seed=9)
FILES = sample_files(seed=9)
LIDAR_NAN = RAW["lidar"].copy()
LIDAR_NAN[:] = np.nan


def _kserve(name: str, shape: list[int], datatype: str = "FP32", data: Any = None) -> dict:
    n = int(np.prod(shape))
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype,
                        "data": data if data is not None else [0.5] * n}]}


def _binary(head: dict[str, Any], data: bytes) -> dict[str, Any]:
    raw = json.dumps(head).encode()
    return {"content": raw + data, "headers": {"Inference-Header-Content-Length": str(len(raw))}}


BAD_SIZE_HEAD = {"inputs": [{"name": "wifi", "shape": [1, 3, 114, 10], "datatype": "FP32",
                             "parameters": {"binary_data_size": 8}}]}

# (id, method/path, request kwargs, status, message pattern)
CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("rig-wrong-shape", "/v1/rigs/r/infer",
     {"json": {"frames": {"lidar": np.ones((30, 4)).tolist()}}}, 400,
     r"lidar: expected .*\(N, 3\).*got shape \(30, 4\)"),
    ("rig-dtype", "/v1/rigs/r/infer", {"json": {"frames": {"lidar": [["a", "b", "c"]]}}}, 400,
     r"lidar: values must be numbers"),
    ("rig-nan", "/v1/rigs/r/infer", {"json": {"frames": {"lidar": {
        "b64": base64.b64encode(LIDAR_NAN.tobytes()).decode(), "dtype": "float64",
        "shape": list(LIDAR_NAN.shape)}}}}, 400, r"lidar: .*non-finite"),
    # Finite, but past float32: the model input overflowed to inf and the answer was a
    # 200 with null joints.
    ("rig-beyond-float32", "/v1/rigs/r/infer",
     {"json": {"frames": {"mmwave": [[1, 1, 2, 1e300, 0.5], [1, 2, 3, 0.1, 0.5]]}}}, 400,
     r"no usable sensor frame: mmwave: expected values within float32's range \(magnitude at "
     r"most 3.403e\+38\), got 1e\+300"),
    # A point no sensor on a rig can return: it gave a 200 with joints a long way off.
    ("rig-beyond-sensor-range", "/v1/rigs/r/infer",
     {"json": {"frames": {"lidar": [[1e30, 1, 2], [1, 2, 3]]}}}, 400,
     r"no usable sensor frame: lidar: expected \(N, 3\) float points, got a coordinate of "
     r"1e\+30 m \(at most 1000 m from the sensor on each axis\)"),
    ("rig-truncated-file", "/v1/rigs/r/infer",
     {"files": {"wifi": ("frame001.mat", FILES["wifi"][:200])}}, 400, r"wifi: .*expected"),
    ("rig-png-bomb-header", "/v1/rigs/r/infer",
     {"files": {"depth": ("frame001.png", png_declaring(100_000, 100_000))}}, 400,
     r"depth: <depth upload>: expected a depth image of at most 16777216 pixels, found a "
     r"PNG header declaring 100000x100000 = 10000000000 pixels"),
    # scipy's loadmat died of a segmentation fault on this one-byte change, taking the
    # server with it; now the wifi frame is just undecodable.
    ("rig-mat-bad-type-code", "/v1/rigs/r/infer", {"files": {"wifi": ("frame001.mat", bytes(
        b if i != 193 else 0xEA for i, b in enumerate(FILES["wifi"])))}}, 400,
     r"wifi: <wifi upload>: expected a MATLAB v5 file with key 'CSIamp' \(3, 114, 10\), "
     r"found unreadable MATLAB data \(CSIamp: numeric data of unknown type code 59913\)"),
    ("rig-mat-truncated-header", "/v1/rigs/r/infer",
     {"files": {"wifi": ("frame001.mat", FILES["wifi"][:2])}}, 400,
     r"wifi: .*found unreadable MATLAB data \(2 bytes, shorter than the 128-byte"),
    ("rig-unknown-modality", "/v1/rigs/r/infer", {"json": {"frames": {"thermal": [[1, 2]]}}},
     400, r"unknown modality 'thermal'; this repository accepts depth, lidar, mmwave, wifi"),
    ("rig-many-unknown-modalities", "/v1/rigs/r/infer",
     {"json": {"frames": {f"s{i:04d}": [[1, 2]] for i in range(1000)}}}, 400,
     r"^unknown modality 's0000', 's0001', 's0002', 's0003', 's0004' and 995 more; this "
     r"repository accepts depth, lidar, mmwave, wifi$"),
    ("rig-empty", "/v1/rigs/r/infer", {"json": {"frames": {}}}, 400,
     r"no sensor frames in the request; send at least one of depth"),
    ("rig-no-body", "/v1/rigs/r/infer", {"content": b""}, 400, r"request JSON is not valid"),
    ("rig-bad-base64", "/v1/rigs/r/infer", {"json": {"frames": {"lidar": {
        "b64": "@@not base64@@", "dtype": "float64", "shape": [1, 3]}}}}, 400,
     r"lidar.b64 is not valid base64"),
    ("rig-b64-size", "/v1/rigs/r/infer", {"json": {"frames": {"lidar": {
        "b64": base64.b64encode(b"\0" * 16).decode(), "dtype": "float64", "shape": [1, 3]}}}},
     400, r"lidar: float64 tensor of shape \[1, 3\] needs 24 bytes, got 16"),
    ("rig-b64-dtype", "/v1/rigs/r/infer", {"json": {"frames": {"lidar": {
        "b64": "AAAA", "dtype": "complex64", "shape": [1]}}}}, 400,
     r"lidar.dtype 'complex64' is not accepted; use one of uint8"),
    ("rig-modality-too-large", "/v1/rigs/r/infer",
     {"files": {"lidar": ("frame001.bin", b"\0" * ((1 << 20) + 24))}}, 413,
     r"lidar: frame of 1048600 bytes exceeds the limit of 1048576 bytes"),
    ("rig-content-type", "/v1/rigs/r/infer",
     {"content": b"x", "headers": {"content-type": "text/plain"}}, 400,
     r"Content-Type 'text/plain' is not accepted"),
    ("body-too-large", "/v1/rigs/r/infer", {"content": b"{" + b" " * (5 << 20) + b"}",
                                            "headers": {"content-type": "application/json"}},
     413, r"request body of \d+ bytes exceeds the limit of 4194304 bytes"),
    ("kserve-wrong-shape", "/v2/models/rig/infer", {"json": _kserve("lidar", [1, 255, 4])}, 400,
     r"input lidar: shape \[1, 255, 4\], expected \[-1, 256, 4\]"),
    ("kserve-dtype", "/v2/models/rig/infer", {"json": _kserve("lidar", [1, 256, 4], "FP64")},
     400, r"input lidar: datatype FP64, expected FP32"),
    ("kserve-bad-datatype", "/v2/models/rig/infer",
     {"json": _kserve("lidar", [1, 256, 4], "FLOAT")}, 400,
     r"unknown datatype 'FLOAT'; accepted: BOOL"),
    ("kserve-nan", "/v2/models/rig/infer",
     {"content": json.dumps(_kserve("mmwave", [1, 64, 6], data=[float("nan")] * 384))}, 400,
     r"input mmwave: holds NaN or inf"),
    ("kserve-unknown-input", "/v2/models/rig/infer", {"json": _kserve("thermal", [1, 2])}, 400,
     r"unknown input 'thermal' for model rig; inputs are depth, lidar, mmwave, wifi"),
    ("kserve-unknown-model", "/v2/models/pose/infer", {"json": _kserve("lidar", [1, 256, 4])},
     404, r"unknown model 'pose'; available: rig, rig.depth"),
    ("kserve-empty", "/v2/models/rig/infer", {"json": {"inputs": []}}, 400,
     r"request must have a non-empty 'inputs' list"),
    ("kserve-not-object", "/v2/models/rig/infer", {"json": [1, 2]}, 400,
     r"request body must be a JSON object"),
    ("kserve-data-count", "/v2/models/rig/infer",
     {"json": _kserve("lidar", [1, 256, 4], data=[1.0, 2.0])}, 400,
     r"'data' holds 2 values but shape \[1, 256, 4\] needs 1024"),
    ("kserve-binary-size", "/v2/models/rig/infer", _binary(BAD_SIZE_HEAD, b"\0" * 8), 400,
     r"input wifi: binary_data_size 8 does not match shape \[1, 3, 114, 10\]"),
    # 2**32 * 2**32 elements wrap to 0 in int64 and would "match" an empty payload.
    ("kserve-shape-overflow-json", "/v2/models/rig/infer",
     {"json": _kserve("lidar", [2**32, 2**32], data=[])}, 400,
     r"input lidar: shape \[4294967296, 4294967296\] is too large: its non-zero dimensions "
     r"multiply to 18446744073709551616 elements"),
    ("kserve-shape-overflow-binary", "/v2/models/rig/infer", _binary({"inputs": [{
        "name": "lidar", "shape": [2**32, 2**32], "datatype": "FP32",
        "parameters": {"binary_data_size": 0}}]}, b""), 400,
     r"input lidar: shape \[4294967296, 4294967296\] is too large"),
    # A zero dimension empties the tensor, but numpy cannot build the other dimensions.
    ("kserve-shape-unbuildable-json", "/v2/models/rig/infer",
     {"json": _kserve("lidar", [2**62, 0], data=[])}, 400,
     r"input lidar: shape \[4611686018427387904, 0\] is too large: its non-zero dimensions "
     r"multiply to 4611686018427387904 elements; at most \d+ are accepted"),
    ("kserve-shape-unbuildable-binary", "/v2/models/rig/infer", _binary({"inputs": [{
        "name": "lidar", "shape": [2**62, 2**62, 0], "datatype": "FP32",
        "parameters": {"binary_data_size": 0}}]}, b""), 400,
     r"input lidar: shape \[4611686018427387904, 4611686018427387904, 0\] is too large"),
    ("rig-b64-shape-unbuildable", "/v1/rigs/r/infer", {"json": {"frames": {"lidar": {
        "b64": "", "dtype": "float64", "shape": [2**62, 0]}}}}, 400,
     r"lidar: shape \[4611686018427387904, 0\] is too large"),
    ("kserve-data-out-of-range", "/v2/models/rig/infer",
     {"json": _kserve("lidar", [1, 256, 4], "INT8", data=[1000] * 1024)}, 400,
     r"input lidar: a value in 'data' is out of range for INT8: 1000 is outside -128..127"),
    ("kserve-data-too-large-for-float", "/v2/models/rig/infer",
     {"content": json.dumps(_kserve("lidar", [1, 256, 4], data=[10**400] * 1024))}, 400,
     r"input lidar: a value in 'data' is out of range for FP32"),
    # Finite, but past float32: out of range, not "NaN or inf" as a cast to inf would say.
    ("kserve-fp32-overflow", "/v2/models/rig/infer",
     {"json": _kserve("lidar", [1, 256, 4], data=[1e300] + [0.5] * 1023)}, 400,
     r"input lidar: a value in 'data' is out of range for FP32: overflow encountered"),
    # numpy reads "0.5" and true as numbers: both were answered as if they were FP32 data.
    ("kserve-strings-as-numbers", "/v2/models/rig/infer",
     {"json": _kserve("mmwave", [1, 64, 6], data=["0.5"] * 384)}, 400,
     r"^input mmwave: 'data' must hold numbers for FP32, got strings$"),
    ("kserve-booleans-as-numbers", "/v2/models/rig/infer",
     {"json": _kserve("mmwave", [1, 64, 6], data=[[[True] * 6] * 64])}, 400,
     r"^input mmwave: 'data' must hold numbers for FP32, got booleans$"),
    ("kserve-null-in-data", "/v2/models/rig/infer",
     {"json": _kserve("mmwave", [1, 64, 6], data=[0.5] * 383 + [None])}, 400,
     r"^input mmwave: 'data' must hold numbers for FP32, got null None$"),
    ("kserve-numbers-as-bool", "/v2/models/rig/infer",
     {"json": _kserve("mmwave", [1, 64, 6], "BOOL", data=[1] * 384)}, 400,
     r"^input mmwave: 'data' must hold true or false for BOOL, got integers$"),
    ("rig-value-out-of-range", "/v1/rigs/r/infer", {"json": {"frames": {"lidar": {
        "data": [[300, 1, 2], [3, 4, 5]], "dtype": "uint8"}}}}, 400,
     r"lidar: a value is out of range for dtype uint8 \(Python integer 300 out of bounds"),
    # JSON true is a Python int, but no dimension: it made numpy's reshape raise (500).
    ("kserve-bool-dimension", "/v2/models/rig/infer",
     {"json": _kserve("lidar", [True, 256, 4], data=[0.5] * 1024)}, 400,
     r"input lidar: 'shape' must be a list of non-negative integers, got \[True, 256, 4\]"),
    ("kserve-bool-binary-size", "/v2/models/rig/infer", _binary({"inputs": [{
        "name": "lidar", "shape": [1], "datatype": "BOOL",
        "parameters": {"binary_data_size": True}}]}, b"\1"), 400,
     r"input lidar: binary_data_size True does not match shape \[1\] of BOOL \(1 bytes\)"),
    ("rig-b64-bool-dimension", "/v1/rigs/r/infer", {"json": {"frames": {"lidar": {
        "b64": "", "dtype": "float64", "shape": [False, 3]}}}}, 400,
     r"lidar.shape must be a list of non-negative integers, got \[False, 3\]"),
    # Answered once, silently, whatever the second entry asked (binary or JSON).
    ("kserve-output-twice", "/v2/models/rig/infer", {"json": {
        **_kserve("mmwave", [1, 64, 6]), "outputs": [
            {"name": "joints"}, {"name": "joints", "parameters": {"binary_data": True}}]}},
     400, r"^output 'joints' is requested twice$"),
    ("kserve-outputs-not-a-list", "/v2/models/rig/infer",
     {"json": {**_kserve("mmwave", [1, 64, 6]), "outputs": 5}}, 400,
     r"'outputs' must be a list of objects with a 'name', got a number"),
    ("kserve-parameters-not-an-object", "/v2/models/rig/infer",
     {"json": {**_kserve("mmwave", [1, 64, 6]), "parameters": [1]}}, 400,
     r"the request's 'parameters' must be an object, got an array"),
    ("kserve-input-parameters-not-an-object", "/v2/models/rig/infer",
     {"json": {"inputs": [{**_kserve("mmwave", [1, 64, 6])["inputs"][0], "parameters": "x"}]}},
     400, r"input mmwave: 'parameters' must be an object, got a string"),
    ("kserve-output-parameters-not-an-object", "/v2/models/rig/infer", {"json": {
        **_kserve("mmwave", [1, 64, 6]), "outputs": [{"name": "joints", "parameters": 1}]}},
     400, r"output joints: 'parameters' must be an object, got a number"),
    # bool("false") is True: a string flag answered binary to a client that asked for JSON.
    ("kserve-binary-data-output-string", "/v2/models/rig/infer", {"json": {
        **_kserve("mmwave", [1, 64, 6]), "parameters": {"binary_data_output": "false"}}}, 400,
     r"^the request's parameter 'binary_data_output' must be true or false, got a string "
     r"'false'$"),
    ("kserve-binary-data-number", "/v2/models/rig/infer", {"json": {
        **_kserve("mmwave", [1, 64, 6]),
        "outputs": [{"name": "joints", "parameters": {"binary_data": 0}}]}}, 400,
     r"^output joints: parameter 'binary_data' must be true or false, got a number 0$"),
    # The id is echoed back: str() made {"a": 1} the Python repr "{'a': 1}" (Triton: 400).
    ("kserve-id-not-a-string", "/v2/models/rig/infer",
     {"json": {**_kserve("mmwave", [1, 64, 6]), "id": {"a": 1}}}, 400,
     r"^'id' must be a string, got an object \{'a': 1\}$"),
    # str.isdigit() is true for '²' and for 5000 digits; int() refuses both (was a 500).
    ("kserve-header-length-superscript", "/v2/models/rig/infer",
     {"content": b"{}", "headers": {"Inference-Header-Content-Length": b"\xb2"}}, 400,
     r"Inference-Header-Content-Length '²' must be an integer no larger than the body "
     r"\(2 bytes\)"),
    ("kserve-header-length-5000-digits", "/v2/models/rig/infer",
     {"content": b"{}", "headers": {"Inference-Header-Content-Length": "9" * 5000}}, 400,
     r"Inference-Header-Content-Length '9{5000}' must be an integer no larger than the body"),
    ("kserve-header-length-leading-zeros", "/v2/models/rig/infer",
     {"content": b"[1]", "headers": {"Inference-Header-Content-Length": "00003"}}, 400,
     r"request body must be a JSON object"),
    ("kserve-gzip-truncated", "/v2/models/rig/infer", {
        "content": gzip.compress(json.dumps(_kserve("mmwave", [1, 64, 6])).encode())[:30],
        "headers": {"Content-Encoding": "gzip"}}, 400,
     r"body is not valid gzip data: Compressed file ended before the end-of-stream marker"),
    ("kserve-deflate-truncated", "/v2/models/rig/infer", {
        "content": zlib.compress(json.dumps(_kserve("mmwave", [1, 64, 6])).encode())[:30],
        "headers": {"Content-Encoding": "deflate"}}, 400, r"body is not valid deflate data"),
    # orjson refuses these and the json fallback raised RecursionError / ValueError (500).
    ("kserve-json-too-deep", "/v2/models/rig/infer", {"content": b"[" * 5000 + b"]" * 5000},
     400, r"request JSON is not valid: depth limit exceeded"),
    ("rig-json-too-deep", "/v1/rigs/r/infer", {"content": b"[" * 5000 + b"]" * 5000}, 400,
     r"request JSON is not valid: depth limit exceeded"),
    ("kserve-json-5000-digit-number", "/v2/models/rig/infer",
     {"content": b'{"id": ' + b"9" * 5000 + b"}"}, 400,
     r"request JSON is not valid: number is infinity when parsed as double"),
    ("rig-json-5000-digit-number", "/v1/rigs/r/infer",
     {"content": b'{"frames": {"lidar": [[' + b"9" * 5000 + b", 1, 2]]}}"}, 400,
     r"request JSON is not valid: number is infinity when parsed as double"),
    # ~5 KiB of gzip inflating past the 4 MiB body limit: the limit holds after inflating.
    ("kserve-gzip-inflates-too-large", "/v2/models/rig/infer", {
        "content": gzip.compress(b" " * (5 << 20)), "headers": {"Content-Encoding": "gzip"}},
     413, r"request body inflates past the limit of 4194304 bytes"),
    ("kserve-deflate-inflates-too-large", "/v2/models/rig/infer", {
        "content": zlib.compress(b" " * (5 << 20)), "headers": {"Content-Encoding": "deflate"}},
     413, r"request body inflates past the limit of 4194304 bytes"),
    ("kserve-batch-too-large", "/v2/models/rig/infer", {"json": _kserve("mmwave", [33, 64, 6])},
     400, r"batch size 33 is outside 1..32"),
    ("kserve-unknown-output", "/v2/models/rig/infer", {"json": {
        **_kserve("mmwave", [1, 64, 6]), "outputs": [{"name": "pose"}]}}, 400,
     r"unknown output 'pose'; outputs are action_logits, joints"),
    ("kserve-body-too-large", "/v2/models/rig/infer", {"content": b"{" + b" " * (5 << 20) + b"}"},
     413, r"request body of \d+ bytes exceeds the limit of 4194304 bytes"),
    # No Content-Length (chunked): the limit is enforced while the body streams in.
    ("kserve-streamed-too-large", "/v2/models/rig/infer",
     {"content": iter([b" " * (1 << 20)] * 5)}, 413,
     r"request body of \d+ bytes exceeds the limit of 4194304 bytes"),
]


@pytest.mark.parametrize(("path", "kwargs", "status", "pattern"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_4xx_naming_the_problem(live: ServerHandle, path: str,
                                             kwargs: dict[str, Any], status: int,
                                             pattern: str) -> None:
    r = httpx.post(f"{live.url}{path}", **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert re.search(pattern, body["error"]), body["error"]


def test_unknown_endpoint_and_method_answer_in_the_error_format(live: ServerHandle) -> None:
    r = httpx.get(f"{live.url}/v2/nothing")
    assert r.status_code == 404
    assert "no such endpoint GET /v2/nothing" in r.json()["error"]
    r = httpx.get(f"{live.url}/v2/models/rig/infer")
    assert r.status_code == 405
    assert set(r.json()) == {"error"}


@pytest.mark.parametrize("path", ["/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/rig",
                                  "/v2/models/rig/ready", "/v2/models/rig/config", "/metrics"])
def test_head_answers_where_get_does_with_the_headers_only(live: ServerHandle,
                                                           path: str) -> None:
    # RFC 9110 §9.1: a general-purpose server supports HEAD wherever GET; it was a 405.
    head, get = httpx.head(f"{live.url}{path}"), httpx.get(f"{live.url}{path}")
    assert head.status_code == get.status_code == 200, head.headers
    assert head.content == b""
    assert head.headers.get("content-type") == get.headers.get("content-type")
    r = httpx.head(f"{live.url}/v2/models/rig/infer")  # a POST route stays POST only
    assert (r.status_code, r.headers["allow"]) == (405, "POST")
