"""KServe v2 over HTTP, driven by the unmodified tritonclient.http against a live server."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from rigserve.export.manifest import load_manifest
from rigserve.sensors.specs import all_subsets, subset_name
from tritonclient.utils import InferenceServerException

from tests.server.live_server import ServerHandle, serve_in_thread

SUBSETS = [subset_name(s) for s in all_subsets(("depth", "lidar", "mmwave", "wifi"))]


def _inputs(tiny_repo: Path, subset: str, batch: int, seed: int) -> dict[str, np.ndarray]:
    manifest = load_manifest(tiny_repo)
    rng = np.random.default_rng(seed)
    return {m: rng.random((batch, *manifest.modalities[m].shape[1:])).astype(np.float32)
            for m in subset.split("+")}


def _reference(tiny_repo: Path, subset: str, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(tiny_repo / f"engines/{subset}.fp32.onnx"),
                                providers=["CPUExecutionProvider"])
    return sess.run(["joints", "action_logits"], feed)


@pytest.fixture(scope="module")
def client(live: ServerHandle) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(live.http_target)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("subset", SUBSETS)
def test_rig_model_routes_every_subset_to_its_engine(client: triton.InferenceServerClient,
                                                     tiny_repo: Path, subset: str,
                                                     binary: bool) -> None:
    feed = _inputs(tiny_repo, subset, batch=3, seed=len(subset))
    inputs = []
    for name, arr in feed.items():
        inp = triton.InferInput(name, list(arr.shape), "FP32")
        inp.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(inp)
    outputs = [triton.InferRequestedOutput(n, binary_data=binary)
               for n in ("joints", "action_logits")]
    result = client.infer("rig", inputs, outputs=outputs, request_id="r-1")
    joints, logits = _reference(tiny_repo, subset, feed)
    np.testing.assert_allclose(result.as_numpy("joints"), joints, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.as_numpy("action_logits"), logits, rtol=1e-5, atol=1e-5)
    response = result.get_response()
    assert response["parameters"]["engine"] == f"rig.{subset}"
    assert response["id"] == "r-1"


def test_subset_engine_is_its_own_model_and_rejects_other_inputs(
        client: triton.InferenceServerClient, tiny_repo: Path) -> None:
    feed = _inputs(tiny_repo, "depth+lidar", batch=1, seed=0)
    inputs = []
    for name, arr in feed.items():
        inp = triton.InferInput(name, list(arr.shape), "FP32")
        inp.set_data_from_numpy(arr)
        inputs.append(inp)
    result = client.infer("rig.depth+lidar", inputs)
    np.testing.assert_allclose(result.as_numpy("joints"),
                               _reference(tiny_repo, "depth+lidar", feed)[0], atol=1e-6)
    with pytest.raises(InferenceServerException, match="missing lidar"):
        client.infer("rig.depth+lidar", inputs[:1])


def test_metadata_health_and_config_answer_like_triton(client: triton.InferenceServerClient,
                                                       live: ServerHandle) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("rig")
    assert client.is_model_ready("rig.wifi")
    meta = client.get_model_metadata("rig.lidar+wifi")
    assert [i["name"] for i in meta["inputs"]] == ["lidar", "wifi"]
    assert meta["inputs"][0] == {"name": "lidar", "datatype": "FP32", "shape": [-1, 256, 4]}
    config = client.get_model_config("rig")
    assert config["max_batch_size"] == 32
    assert all(i["optional"] for i in config["input"])
    assert {o["name"] for o in config["output"]} == {"joints", "action_logits"}
    engine_config = client.get_model_config("rig.lidar")
    # CPU ONNX Runtime engines here: Triton's backend name and instance kind for them.
    assert (engine_config["platform"], engine_config["backend"]) == ("onnxruntime_onnx",
                                                                    "onnxruntime")
    assert engine_config["instance_group"][0]["kind"] == "KIND_CPU"
    assert client.get_server_metadata()["name"] == "rigserve"
    index = client.get_model_repository_index()
    assert {m["name"] for m in index} >= {"rig", "rig.depth+lidar+mmwave+wifi"}
    stats = client.get_inference_statistics("rig")
    assert stats["model_stats"][0]["name"] == "rig"
    every = httpx.get(f"{live.url}/v2/models/stats").json()["model_stats"]
    assert {"rig", "rig.lidar"} <= {m["name"] for m in every}
    r = httpx.get(f"{live.url}/v2/models/rig/versions/7")
    assert r.status_code == 404
    assert "no version '7'" in r.json()["error"]


def test_unknown_model_is_404_with_the_available_names(client: triton.InferenceServerClient
                                                       ) -> None:
    inp = triton.InferInput("lidar", [1, 256, 4], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 256, 4), np.float32))
    with pytest.raises(InferenceServerException,
                       match=r"unknown model 'pose'.*available: rig") as e:
        client.infer("pose", [inp])
    assert e.value.status() == "404"


def test_binary_request_without_content_type_is_accepted(live: ServerHandle,
                                                         tiny_repo: Path) -> None:
    arr = _inputs(tiny_repo, "mmwave", 2, 5)["mmwave"]
    head = (b'{"inputs":[{"name":"mmwave","shape":[2,64,6],"datatype":"FP32",'
            b'"parameters":{"binary_data_size":%d}}],'
            b'"parameters":{"binary_data_output":true}}' % arr.nbytes)
    r = httpx.post(f"{live.url}/v2/models/rig/infer", content=head + arr.tobytes(),
                   headers={"Inference-Header-Content-Length": str(len(head))})
    assert r.status_code == 200, r.text
    n = int(r.headers["Inference-Header-Content-Length"])
    joints = np.frombuffer(r.content[n:n + 2 * 17 * 3 * 4], np.float32).reshape(2, 17, 3)
    np.testing.assert_allclose(joints, _reference(tiny_repo, "mmwave", {"mmwave": arr})[0],
                               atol=1e-6)


def test_json_bodies_with_nan_tokens_reach_the_check_that_names_them() -> None:
    # orjson refuses NaN/Infinity tokens; Python's json.dumps writes them, so the parser
    # falls back to the standard library for exactly those bodies.
    from rigserve.server import jsonio

    assert jsonio.loads(b'{"a": [1.5, 2]}') == {"a": [1.5, 2]}
    values = jsonio.loads(b'{"data": [NaN, Infinity, -Infinity]}')["data"]
    assert np.isnan(values[0])
    assert values[1:] == [np.inf, -np.inf]
    with pytest.raises(json.JSONDecodeError):
        jsonio.loads(b'{"data": [1, 2')
    assert jsonio.dumps({"x": [float("nan")]}) == b'{"x":[null]}'  # never a bare NaN


@pytest.mark.parametrize(("coding", "compress"), [
    ("GZIP", gzip.compress), ("x-gzip", gzip.compress), ("Deflate", zlib.compress)])
def test_content_coding_names_are_case_insensitive(live: ServerHandle, tiny_repo: Path,
                                                   coding: str,
                                                   compress: Callable[[bytes], bytes]) -> None:
    # RFC 9110 §8.4.1: content codings are case-insensitive; x-gzip is gzip.
    arr = _inputs(tiny_repo, "mmwave", 1, 3)["mmwave"]
    body = json.dumps({"inputs": [{"name": "mmwave", "shape": [1, 64, 6], "datatype": "FP32",
                                   "data": arr.reshape(-1).tolist()}]}).encode()
    r = httpx.post(f"{live.url}/v2/models/rig/infer", content=compress(body),
                   headers={"Content-Encoding": coding})
    assert r.status_code == 200, r.text
    joints = np.asarray(r.json()["outputs"][0]["data"], np.float32).reshape(1, 17, 3)
    np.testing.assert_allclose(joints, _reference(tiny_repo, "mmwave", {"mmwave": arr})[0],
                               atol=1e-6)


def test_load_with_a_config_override_or_model_files_is_refused_not_ignored(
        client: triton.InferenceServerClient, live: ServerHandle) -> None:
    # Reloading as exported and answering success would tell the client its override
    # was applied (Triton applies it, and refuses load parameters it does not know).
    with pytest.raises(InferenceServerException,
                       match=r"^\[400\] loading with parameter 'config' is not supported: "
                             r"rigserve serves the repository as exported") as e:
        client.load_model("rig", config=json.dumps({"max_batch_size": 4}))
    assert e.value.status() == "400"
    with pytest.raises(InferenceServerException,
                       match=r"parameter 'config', 'file:1/model.onnx' is not supported"):
        client.load_model("rig", config="{}", files={"file:1/model.onnx": b"\0"})
    r = httpx.post(f"{live.url}/v2/repository/models/rig/load", content=b"[1]")
    assert r.status_code == 400
    assert r.json() == {"error": "a load request body must be a JSON object, with an "
                                 "optional 'parameters' object"}


@pytest.mark.parametrize(("call", "pattern"), [
    (lambda c: c.get_system_shared_memory_status(), r"shared memory is not supported: send "
     r"tensors in the request body"),
    (lambda c: c.register_system_shared_memory("r", "/key", 64), r"shared memory is not"),
    (lambda c: c.unregister_system_shared_memory("r"), r"shared memory is not supported"),
    (lambda c: c.get_cuda_shared_memory_status(), r"shared memory is not supported"),
    (lambda c: c.unregister_cuda_shared_memory(), r"shared memory is not supported"),
    (lambda c: c.get_trace_settings(), r"trace settings are not supported: rigserve exports "
     r"Prometheus metrics at /metrics"),
    (lambda c: c.update_trace_settings("rig", {"trace_level": ["TIMESTAMPS"]}),
     r"trace settings are not supported"),
    (lambda c: c.get_log_settings(), r"log settings are not supported: set the log level"),
    (lambda c: c.update_log_settings({"log_info": True}), r"log settings are not supported"),
], ids=["shm-status", "shm-register", "shm-unregister", "cuda-shm-status", "cuda-shm-unregister",
        "trace", "trace-update", "log", "log-update"])
def test_extensions_rigserve_lacks_say_so_and_what_to_use_instead(
        client: triton.InferenceServerClient,
        call: Callable[[triton.InferenceServerClient], object], pattern: str) -> None:
    # They were a bare 404 "no such endpoint", unlike the gRPC service's answers.
    with pytest.raises(InferenceServerException, match=pattern) as e:
        call(client)
    assert e.value.status() == "400"


def test_class_count_and_shared_memory_tensors_are_refused_in_the_grpc_words(
        client: triton.InferenceServerClient) -> None:
    lidar = triton.InferInput("lidar", [1, 256, 4], "FP32")
    lidar.set_data_from_numpy(np.zeros((1, 256, 4), np.float32))
    with pytest.raises(InferenceServerException) as e:
        client.infer("rig", [lidar], outputs=[
            triton.InferRequestedOutput("action_logits", class_count=3)])
    assert e.value.status() == "400"
    assert e.value.message() == ("output 'action_logits': parameter 'classification': the "
                                 "classification extension is not supported; ask for "
                                 "'action_logits' and take the argmax")
    out = triton.InferRequestedOutput("joints")
    out.set_shared_memory("region0", 17 * 3 * 4)
    with pytest.raises(InferenceServerException,
                       match=r"^\[400\] output 'joints': parameter 'shared_memory_region': "
                             r"shared-memory inputs/outputs are not supported; send the data "
                             r"in the request body \(JSON 'data'"):
        client.infer("rig", [lidar], outputs=[out])


def test_a_request_past_its_timeout_is_503_and_counted_so(tiny_repo: Path) -> None:
    # Queued behind a 200 ms batching delay, a 1 µs timeout always passes first; the
    # gRPC service honours the same parameter (UNAVAILABLE), as Triton does.
    with serve_in_thread(tiny_repo, max_queue_delay_ms=200.0, inline_max_ms=0.0) as live:
        client = triton.InferenceServerClient(live.http_target)
        lidar = triton.InferInput("lidar", [1, 256, 4], "FP32")
        lidar.set_data_from_numpy(np.zeros((1, 256, 4), np.float32))
        with pytest.raises(InferenceServerException) as e:
            client.infer("rig", [lidar], timeout=1)
        assert e.value.status() == "503"
        assert e.value.message() == (
            "Request timeout expired: the request's timeout of 1 µs passed before its "
            "answer was ready; send a longer timeout or none, or retry")
        assert client.infer("rig", [lidar], timeout=10_000_000).as_numpy("joints") is not None
        metrics = httpx.get(f"{live.url}/metrics").text
        assert ('rigserve_requests_total{code="503",protocol="kserve_http",subset="lidar"} 1.0'
                in metrics)
        for bad in ("1000", -1, 1.5, True):
            r = httpx.post(f"{live.url}/v2/models/rig/infer", json={
                "inputs": [{"name": "lidar", "shape": [1, 256, 4], "datatype": "FP32",
                            "data": [0.0] * 1024}], "parameters": {"timeout": bad}})
            assert r.status_code == 400
            assert r.json()["error"].startswith("the request's parameter 'timeout' must be a "
                                                "non-negative integer (microseconds), got ")
