"""gRPC inside the real app (uvicorn + gRPC on one loop): what /metrics shows over HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as tgrpc

from tests.grpc.rig_client import LockStep, rig_frame
from tests.server.live_server import serve_in_subprocess, serve_in_thread
from tests.server.repo_factory import sample_raw_frames


def test_rig_stream_transitions_and_grpc_requests_show_in_http_metrics(tiny_repo: Path) -> None:
    raw = sample_raw_frames(seed=8)
    with serve_in_thread(tiny_repo, grpc=True, staleness_s=0.25) as handle:
        assert handle.grpc_target is not None
        with grpc.insecure_channel(handle.grpc_target) as channel:
            stream = LockStep(channel)
            subsets = []
            for i in range(12):  # LiDAR silent for frames 3..7 (t = 0.4 .. 0.8 s)
                sensors = {"wifi": raw["wifi"]}
                if not 3 <= i < 8:
                    sensors["lidar"] = raw["lidar"]
                subsets.append(stream.send(rig_frame(i, 0.1 * (i + 1), sensors)).prediction.subset)
            stream.close()
        x = np.zeros((1, 256, 4), np.float32)
        inp = tgrpc.InferInput("lidar", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        tgrpc.InferenceServerClient(handle.grpc_target).infer("rig", [inp])
        text = httpx.get(f"{handle.url}/metrics").text

    # last seen t=0.3; held through t=0.5, stale from t=0.6, back at t=0.9
    assert subsets == ["lidar+wifi"] * 5 + ["wifi"] * 3 + ["lidar+wifi"] * 4
    assert 'rigserve_sensor_transitions_total{modality="lidar",to="offline"} 1.0' in text
    assert 'rigserve_sensor_transitions_total{modality="lidar",to="online"} 2.0' in text
    assert 'rigserve_sensors_online{modality="lidar"} 0.0' in text
    assert 'rigserve_modality_frames_total{modality="lidar",state="stale"} 3.0' in text
    assert 'rigserve_requests_total{code="OK",protocol="stream",subset="wifi"} 3.0' in text
    assert 'rigserve_requests_total{code="OK",protocol="kserve_grpc",subset="lidar"} 1.0' in text


@pytest.mark.slow
def test_rigserve_edge_simulate_against_rigserve_serve(tiny_repo: Path) -> None:
    with serve_in_subprocess(tiny_repo, grpc=True, env={"RIGSERVE_STALENESS_S": "0.2"}) as handle:
        assert handle.grpc_target is not None
        done = subprocess.run(
            [sys.executable, "-m", "rigserve", "edge", "--target", handle.grpc_target,
             "--rig", "sim-1", "--simulate", "--frames", "12", "--fps", "20",
             "--fail", "depth@0.2s-0.5s"],
            capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "frames sent 12, answered 12, errors 0" in done.stdout
    assert "depth -> offline (stale)" in done.stdout
    assert "MPJPE vs ground truth" in done.stdout
