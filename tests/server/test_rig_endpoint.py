"""The rig endpoint on a live server: JSON, base64 and MM-Fi multipart frames, routing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from rigserve.sensors.preprocess import PreprocessSpec, preprocess_frame
from rigserve.sensors.specs import ACTION_NAMES

from tests.server.live_server import ServerHandle
from tests.server.repo_factory import sample_files, sample_raw_frames


def _expected(tiny_repo: Path, raw: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """What the engine of exactly these sensors gives on the shared preprocessing."""
    subset = "+".join(sorted(raw))
    sess = ort.InferenceSession(str(tiny_repo / f"engines/{subset}.fp32.onnx"),
                                providers=["CPUExecutionProvider"])
    feed = {m: preprocess_frame(m, a, PreprocessSpec())[None] for m, a in raw.items()}
    joints, logits = sess.run(["joints", "action_logits"], feed)
    return joints[0], logits[0]


def _b64(arr: np.ndarray) -> dict[str, object]:
    return {"b64": base64.b64encode(arr.astype(arr.dtype.newbyteorder("<")).tobytes()).decode(),
            "dtype": arr.dtype.name, "shape": list(arr.shape)}


def test_json_frames_route_to_the_online_subset_and_match_the_engine(
        live: ServerHandle, tiny_repo: Path) -> None:
    raw = sample_raw_frames(seed=1)
    body = {"frames": {"lidar": raw["lidar"].tolist(), "wifi": _b64(raw["wifi"])}}
    r = httpx.post(f"{live.url}/v1/rigs/rig-7/infer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["used"] == ["lidar", "wifi"]
    assert out["engine"] == "rig.lidar+wifi"
    assert out["dropped"] == {"depth": "absent", "mmwave": "absent"}
    joints, logits = _expected(tiny_repo, {"lidar": raw["lidar"], "wifi": raw["wifi"]})
    np.testing.assert_allclose(out["joints"], joints, atol=2e-6)
    assert out["action"] == ACTION_NAMES[int(np.argmax(logits))]
    assert sum(out["action_probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert {"route", "queue", "compute", "total", "server"} <= set(out["latency_ms"])


def test_multipart_mmfi_files_decode_like_the_dataset_readers(live: ServerHandle,
                                                              tiny_repo: Path) -> None:
    files = sample_files(seed=2)
    raw = sample_raw_frames(seed=2)
    r = httpx.post(f"{live.url}/v1/rigs/r1/infer", files={
        "depth": ("frame001.png", files["depth"]), "lidar": ("frame001.bin", files["lidar"]),
        "wifi-csi": ("frame001.mat", files["wifi"])})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["subset"] == "depth+lidar+wifi"
    joints, _ = _expected(tiny_repo, {m: raw[m] for m in ("depth", "lidar", "wifi")})
    np.testing.assert_allclose(out["joints"], joints, atol=2e-6)


@pytest.mark.parametrize("cut", [10, 200, 2_000])
def test_truncated_multipart_is_refused_not_answered_without_its_last_part(
        live: ServerHandle, cut: int) -> None:
    files = sample_files(seed=2)
    request = httpx.Request("POST", f"{live.url}/v1/rigs/r1/infer", files={
        "lidar": ("frame001.bin", files["lidar"]), "wifi": ("frame001.mat", files["wifi"])})
    body, ctype = request.read(), request.headers["content-type"]
    assert httpx.post(request.url, content=body + b"an epilogue",
                      headers={"content-type": ctype}).json()["used"] == ["lidar", "wifi"]
    # Cut inside the last part (or inside the first): the form parser alone would drop
    # that part and answer 200 without the sensor.
    r = httpx.post(request.url, content=body[:len(body) - cut], headers={"content-type": ctype})
    assert r.status_code == 400, r.text
    assert "multipart body is truncated" in r.json()["error"]
    assert "closing boundary" in r.json()["error"]


def test_bad_sensor_is_dropped_with_its_reason_and_the_rest_still_answer(
        live: ServerHandle, tiny_repo: Path) -> None:
    files = sample_files(seed=3)
    raw = sample_raw_frames(seed=3)
    flat = np.zeros((480, 640), np.uint16)
    r = httpx.post(f"{live.url}/v1/rigs/r1/infer", json={"frames": {
        "depth": _b64(flat), "mmwave": {"file_b64": base64.b64encode(files["mmwave"]).decode()},
        "lidar": {"file_b64": base64.b64encode(files["lidar"][:-5]).decode()}}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["used"] == ["mmwave"]
    assert out["dropped"] == {"depth": "flat", "lidar": "decode", "wifi": "absent"}
    assert "truncated" in out["dropped_detail"]["lidar"]
    np.testing.assert_allclose(out["joints"], _expected(tiny_repo, {"mmwave": raw["mmwave"]})[0],
                               atol=2e-6)


def test_stale_sensor_named_by_the_client_is_dropped_as_stale(live: ServerHandle) -> None:
    raw = sample_raw_frames(seed=4)
    r = httpx.post(f"{live.url}/v1/rigs/r1/infer", json={
        "frames": {"lidar": raw["lidar"].tolist(), "mmwave": raw["mmwave"].tolist()},
        "stale": ["lidar"]})
    assert r.status_code == 200, r.text
    assert r.json()["used"] == ["mmwave"]
    assert r.json()["dropped"]["lidar"] == "stale"


def test_router_warm_up_runs_every_modalitys_decode_path_without_refusals(
        caplog: pytest.LogCaptureFixture) -> None:
    from rigserve.sensors.preprocess import PreprocessSpec
    from rigserve.server.router import Router

    router = Router(("depth", "lidar", "mmwave", "wifi"), {"depth", "lidar"}, PreprocessSpec(), {})
    with caplog.at_level("WARNING", logger="rigserve.server.router"):
        router.warm()
    assert not caplog.records  # every synthetic file decoded, validated and preprocessed


def test_router_ignores_a_known_sensor_the_repository_does_not_take_and_uses_the_rest() -> None:
    from rigserve.sensors.formats import encode_frame
    from rigserve.server.errors import InvalidInput
    from rigserve.server.router import Router

    from tests.server.repo_factory import sample_raw_frames

    raw = sample_raw_frames(seed=4)
    router = Router(("depth", "lidar"), {"depth", "lidar", "depth+lidar"}, PreprocessSpec(), {})
    route = router.route({"lidar": encode_frame("lidar", raw["lidar"]),
                          "mmwave": encode_frame("mmwave", raw["mmwave"])})
    assert route.subset == "lidar"
    assert route.dropped == {"depth": "absent", "mmwave": "unused"}
    assert "take depth, lidar" in route.messages["mmwave"]
    with pytest.raises(InvalidInput, match="mmwave: ignored; this repository's engines take"):
        router.route({"mmwave": encode_frame("mmwave", raw["mmwave"])})
    with pytest.raises(InvalidInput, match="unknown modality 'thermal'; this repository accepts"):
        router.route({"thermal": b"\x00", "lidar": encode_frame("lidar", raw["lidar"])})


def test_a_sensor_sent_under_both_its_names_is_refused_not_half_dropped(
        live: ServerHandle) -> None:
    raw = sample_raw_frames(seed=5)
    wifi = raw["wifi"].tolist()
    r = httpx.post(f"{live.url}/v1/rigs/r1/infer",
                   json={"frames": {"wifi": wifi, "wifi-csi": wifi}})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == ("modality 'wifi' is sent twice (as 'wifi' and 'wifi-csi'); "
                                 "send one frame per sensor")
    files = sample_files(seed=5)
    r = httpx.post(f"{live.url}/v1/rigs/r1/infer", files=[
        ("lidar", ("a.bin", files["lidar"])), ("lidar", ("b.bin", files["lidar"]))])
    assert r.status_code == 400, r.text
    assert "modality 'lidar' is sent twice (as 'lidar' and 'lidar')" in r.json()["error"]


def test_stale_takes_folder_names_and_refuses_names_no_sensor_has(live: ServerHandle) -> None:
    raw = sample_raw_frames(seed=6)
    frames = {"lidar": raw["lidar"].tolist(), "wifi": raw["wifi"].tolist()}
    r = httpx.post(f"{live.url}/v1/rigs/r1/infer", json={"frames": frames,
                                                         "stale": ["wifi-csi"]})
    assert r.status_code == 200, r.text
    assert r.json()["used"] == ["lidar"]
    assert r.json()["dropped"]["wifi"] == "stale"
    # A typo used to be ignored, and the sensor the client meant stayed in use.
    r = httpx.post(f"{live.url}/v1/rigs/r1/infer", json={"frames": frames,
                                                         "stale": ["wfi"]})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == ("'stale' names unknown modality 'wfi'; accepted: depth, "
                                 "lidar, mmwave, wifi or their MM-Fi folder names")


def test_content_type_is_matched_without_regard_to_case(live: ServerHandle) -> None:
    # RFC 9110 §8.3.1: media type and subtype are case-insensitive.
    raw = sample_raw_frames(seed=7)
    r = httpx.post(f"{live.url}/v1/rigs/r1/infer", headers={"content-type": "Application/JSON"},
                   content=json.dumps({"frames": {"lidar": raw["lidar"].tolist()}}))
    assert r.status_code == 200, r.text
    request = httpx.Request("POST", f"{live.url}/v1/rigs/r1/infer",
                            files={"lidar": ("frame001.bin", sample_files(seed=7)["lidar"])})
    ctype = request.headers["content-type"].replace("multipart/form-data",
                                                    "Multipart/Form-Data")
    r = httpx.post(request.url, content=request.read(), headers={"content-type": ctype})
    assert r.status_code == 200, r.text
    assert r.json()["used"] == ["lidar"]
