"""Triton's repository RPCs over gRPC: index, load (atomic reload), failed load status."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest
import tritonclient.grpc as tgrpc
from tritonclient.utils import InferenceServerException

from tests.grpc.grpc_server import live_grpc


def test_index_and_load_reload_the_repository_atomically(tiny_repo: Path) -> None:
    with live_grpc(tiny_repo) as live:
        client = tgrpc.InferenceServerClient(live.target)
        index = client.get_model_repository_index()
        assert {m.name for m in index.models} >= {"rig", "rig.depth+lidar"}
        assert {m.state for m in index.models} == {"READY"}
        before = live.service.repository
        client.load_model("rig")
        assert live.service.repository is not before
        assert live.metric("rigserve_repository_reloads_total", result="success") == 1.0


def test_a_failed_load_is_invalid_argument_and_the_old_engines_keep_serving(
        tiny_repo: Path, tmp_path: Path) -> None:
    repo = Path(shutil.copytree(tiny_repo, tmp_path / "repo"))
    with live_grpc(repo) as live:
        client = tgrpc.InferenceServerClient(live.target)
        before = live.service.repository
        with (repo / "engines/depth.fp32.onnx").open("ab") as fh:
            fh.write(b"tampered")
        with pytest.raises(InferenceServerException, match="sha256 mismatch") as err:
            client.load_model("rig")
        assert err.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT)
        with pytest.raises(InferenceServerException, match="failed to load 'nope'") as err:
            client.load_model("nope")
        assert err.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT)
        assert live.service.repository is before
        assert client.is_model_ready("rig")
        assert live.metric("rigserve_repository_reloads_total", result="failure") == 1.0
