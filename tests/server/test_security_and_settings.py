"""API keys, exemptions and start-up validation of the settings."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from rigserve.server.settings import Settings

from tests.server.live_server import serve_in_thread
from tests.server.repo_factory import sample_raw_frames


def test_api_key_guards_inference_and_metadata_but_not_health(tiny_repo: Path) -> None:
    body = {"frames": {"mmwave": sample_raw_frames(seed=7)["mmwave"].tolist()}}
    with serve_in_thread(tiny_repo, api_keys=["k-one", "k-two"]) as live:
        r = httpx.post(f"{live.url}/v1/rigs/r/infer", json=body)
        assert r.status_code == 401
        assert "API key missing" in r.json()["error"]
        r = httpx.get(f"{live.url}/v2/models/rig", headers={"x-api-key": "nope"})
        assert r.status_code == 401
        assert "not valid" in r.json()["error"]
        r = httpx.post(f"{live.url}/v1/rigs/r/infer", json=body,
                       headers={"Authorization": "Bearer k-two"})
        assert r.status_code == 200
        assert httpx.get(f"{live.url}/v2/models/rig", headers={"x-api-key": "k-one"}).is_success
        kserve = {"inputs": [{"name": "mmwave", "shape": [1, 64, 6], "datatype": "FP32",
                              "data": [0.5] * 384}]}
        r = httpx.post(f"{live.url}/v2/models/rig/infer", json=kserve)
        assert r.status_code == 401
        assert "API key missing" in r.json()["error"]
        r = httpx.post(f"{live.url}/v2/models/rig/infer", json=kserve,
                       headers={"x-api-key": "k-one"})
        assert r.status_code == 200
        assert httpx.get(f"{live.url}/v2/health/live").status_code == 200
        assert httpx.get(f"{live.url}/metrics").status_code == 200


def test_settings_read_the_environment_and_reject_bad_values(
        tiny_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RIGSERVE_REPOSITORY", str(tiny_repo))
    monkeypatch.setenv("RIGSERVE_API_KEYS", "a, b")
    monkeypatch.setenv("RIGSERVE_MAX_BATCH_SIZE", "4")
    monkeypatch.setenv("RIGSERVE_PRECISION", "int8,fp32")
    s = Settings()
    assert s.api_keys == ["a", "b"]
    assert s.max_batch_size == 4
    assert s.precision == ["int8", "fp32"]
    assert s.grpc_max_message_bytes >= 64 << 20
    assert "api_keys" not in repr(s)  # keys never reach logs
    with pytest.raises(ValidationError, match="not a model repository"):
        Settings(repository=tmp_path)
    with pytest.raises(ValidationError, match="tls_cert and tls_key must be given together"):
        Settings(repository=tiny_repo, tls_cert=tiny_repo / "manifest.json")
    with pytest.raises(ValidationError, match="unknown modalities"):
        Settings(repository=tiny_repo, max_modality_bytes={"thermal": 10})
    with pytest.raises(ValidationError, match="http_port"):
        Settings(repository=tiny_repo, http_port=70000)
