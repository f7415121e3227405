"""An engine that fails at run time: the request gets a 500 / INTERNAL naming the failure,
and the same engine keeps answering the requests after it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
import tritonclient.grpc as tgrpc
from onnx import TensorProto, helper, numpy_helper
from rigserve.export.manifest import load_manifest, sha256_file, write_manifest
from rigserve.sensors.preprocess import PreprocessSpec
from tritonclient.utils import InferenceServerException

from tests.server.live_server import serve_in_thread
from tests.server.repo_factory import build_subset_model, build_tiny_repo


def _fails_on_large_values(spec: PreprocessSpec) -> onnx.ModelProto:
    """The tiny lidar model plus a Gather whose index is the input's largest value: any
    value >= 2 indexes past a 2-element table, which ONNX Runtime refuses at run time."""
    model = build_subset_model(["lidar"], spec)
    g = model.graph
    g.initializer.append(numpy_helper.from_array(np.zeros(2, np.float32), "table"))
    branch = [
        helper.make_node("ReduceMax", ["lidar_flat"], ["peak"], keepdims=1),  # (B, 1)
        helper.make_node("Cast", ["peak"], ["index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "index"], ["zero"]),  # (B, 1) zeros, or fails
    ]
    nodes = list(g.node)
    at = next(i for i, n in enumerate(nodes) if n.op_type == "Sum")
    nodes[at].input.append("zero")  # feat + 0: the branch cannot be pruned away
    del g.node[:]
    g.node.extend([*nodes[:at], *branch, *nodes[at:]])
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def fragile_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = build_tiny_repo(tmp_path_factory.mktemp("fragile"))
    manifest = load_manifest(repo)
    entry = next(e for e in manifest.engines if e.subset_name == "lidar")
    onnx.save(_fails_on_large_values(PreprocessSpec()), str(repo / entry.path))
    engines = tuple(dataclasses.replace(e, sha256=sha256_file(repo / e.path)) if e is entry
                    else e for e in manifest.engines)
    write_manifest(repo, dataclasses.replace(manifest, engines=engines))
    return repo


def _kserve(value: float) -> dict[str, object]:
    return {"inputs": [{"name": "lidar", "shape": [1, 256, 4], "datatype": "FP32",
                        "data": [value] * 1024}]}


def test_engine_failure_is_a_500_over_http_and_internal_over_grpc_and_serving_goes_on(
        fragile_repo: Path) -> None:
    with serve_in_thread(fragile_repo, grpc=True) as live:
        url = f"{live.url}/v2/models/rig/infer"
        assert httpx.post(url, json=_kserve(0.5)).status_code == 200
        bad = httpx.post(url, json=_kserve(5.0))
        assert bad.status_code == 500
        assert set(bad.json()) == {"error"}
        assert bad.json()["error"].startswith("internal error (")
        assert httpx.post(url, json=_kserve(0.5)).status_code == 200  # still serving

        client = tgrpc.InferenceServerClient(live.grpc_target)
        inp = tgrpc.InferInput("lidar", [1, 256, 4], "FP32")
        inp.set_data_from_numpy(np.full((1, 256, 4), 5.0, np.float32))
        with pytest.raises(InferenceServerException) as err:
            client.infer("rig", [inp])
        assert err.value.status() == "StatusCode.INTERNAL"
        inp.set_data_from_numpy(np.full((1, 256, 4), 0.5, np.float32))
        assert client.infer("rig", [inp]).as_numpy("joints").shape == (1, 17, 3)
        metrics = httpx.get(f"{live.url}/metrics").text
    assert 'code="500",protocol="kserve_http"' in metrics
