"""/metrics on a live server: the contract's names, bounded labels, promtool-clean."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

from tests.server.live_server import ServerHandle
from tests.server.repo_factory import sample_raw_frames

CONTRACT = (
    "rigserve_request_duration_seconds", "rigserve_queue_duration_seconds",
    "rigserve_compute_duration_seconds", "rigserve_batch_size", "rigserve_requests_total",
    "rigserve_modality_frames_total", "rigserve_subset_requests_total",
    "rigserve_inflight_requests", "rigserve_queue_rejections_total", "rigserve_engine_info",
    "rigserve_ready", "rigserve_repository_reloads_total", "rigserve_sensor_transitions_total",
    "rigserve_sensors_online", "rigserve_stream_frames_dropped_total", "rigserve_streams_active",
)


def _traffic(live: ServerHandle) -> None:
    raw = sample_raw_frames(seed=6)
    for body in ({"frames": {"lidar": raw["lidar"].tolist()}},
                 {"frames": {"lidar": raw["lidar"].tolist(), "mmwave": raw["mmwave"].tolist()}},
                 {"frames": {}}):
        httpx.post(f"{live.url}/v1/rigs/secret-rig-id/infer", json=body)


def test_metrics_have_every_contract_family_and_count_requests(live: ServerHandle) -> None:
    _traffic(live)
    text = httpx.get(f"{live.url}/metrics").text
    for name in CONTRACT:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert 'rigserve_requests_total{code="200",protocol="rest",subset="lidar"}' in text
    assert 'rigserve_requests_total{code="400",protocol="rest",subset="none"}' in text
    assert 'rigserve_modality_frames_total{modality="depth",state="absent"}' in text
    assert 'rigserve_subset_requests_total{subset="lidar+mmwave"}' in text
    assert "rigserve_ready 1.0" in text
    assert "secret-rig-id" not in text  # rig ids are never labels


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed "
                    "(apt-get install prometheus; the Makefile does it)")
def test_live_metrics_pass_promtool_check(live: ServerHandle) -> None:
    _traffic(live)
    text = httpx.get(f"{live.url}/metrics").text
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
