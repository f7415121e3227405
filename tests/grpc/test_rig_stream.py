"""The rigserve.v1 rig stream against a real server: liveness, order, backpressure."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest
from rigserve.proto import rig_stream_pb2 as pb
from rigserve.proto import rig_stream_pb2_grpc as pb_grpc
from rigserve.server.grpc import StreamOptions

from tests.grpc.grpc_server import live_grpc
from tests.grpc.rig_client import LockStep, rig_frame
from tests.server.repo_factory import sample_files, sample_raw_frames

ONLINE, OFFLINE = pb.SensorEvent.ONLINE, pb.SensorEvent.OFFLINE


def _events(answer: pb.RigPrediction) -> list[tuple[str, int, str]]:
    return [(e.modality, e.state, e.reason) for e in answer.events]


def test_lidar_stops_goes_offline_after_the_window_and_comes_back(tiny_repo: Path) -> None:
    raw = sample_raw_frames(seed=1)
    # 10 Hz capture clock; staleness 0.55 s keeps clear of float ties at 0.5 s.
    with live_grpc(tiny_repo, stream_options=StreamOptions(staleness_s=0.55)) as live, \
            grpc.insecure_channel(live.target) as channel:
        stream = LockStep(channel)
        answers = []
        for i in range(30):
            sensors = {"depth": raw["depth"]}
            if not 10 <= i < 20:  # LiDAR silent for frames 10..19 (t = 1.0 .. 1.9 s)
                sensors["lidar"] = raw["lidar"]
            answers.append(stream.send(rig_frame(i, 0.1 * i, sensors)))
            if i == 17:
                online_mid = {m: live.metric("rigserve_sensors_online", modality=m)
                              for m in ("depth", "lidar")}
        assert stream.close() == []
        text = live.metrics_text()
        offline_total = live.metric("rigserve_sensor_transitions_total",
                                    modality="lidar", to="offline")
        online_total = live.metric("rigserve_sensor_transitions_total",
                                   modality="lidar", to="online")
        after = live.metric("rigserve_sensors_online", modality="lidar")

    assert [a.sequence for a in answers] == list(range(30))
    subsets = [a.prediction.subset for a in answers]
    # Held for the window (last seen t=0.9, so through t=1.4), stale from t=1.5, back at t=2.0.
    assert subsets[:15] == ["depth+lidar"] * 15
    assert subsets[15:20] == ["depth"] * 5
    assert subsets[20:] == ["depth+lidar"] * 10
    assert answers[16].prediction.dropped["lidar"] == "stale"
    assert sorted(_events(answers[0])) == [("depth", ONLINE, "first_seen"),
                                           ("lidar", ONLINE, "first_seen")]
    assert _events(answers[15]) == [("lidar", OFFLINE, "stale")]
    assert answers[15].events[0].last_seen == pytest.approx(0.9)
    assert _events(answers[20]) == [("lidar", ONLINE, "resumed")]
    assert all(not a.events for i, a in enumerate(answers) if i not in (0, 15, 20))
    assert list(answers[17].online) == ["depth"]
    assert online_mid == {"depth": 1.0, "lidar": 0.0}
    assert (offline_total, online_total, after) == (1.0, 2.0, 0.0)
    assert 'rigserve_sensor_transitions_total{modality="lidar",to="offline"} 1.0' in text
    assert 'rigserve_sensor_transitions_total{modality="lidar",to="online"} 2.0' in text


def test_predictions_match_a_one_shot_request_for_the_same_frames(tiny_repo: Path) -> None:
    files = sample_files(seed=2)
    with live_grpc(tiny_repo) as live, grpc.insecure_channel(live.target) as channel:
        stream = LockStep(channel)
        answer = stream.send(rig_frame(7, 1.0, {"wifi": files["wifi"], "mmwave": files["mmwave"]}))
        stream.close()
        direct = live.call(live.service.infer_frames(
            {"wifi": files["wifi"], "mmwave": files["mmwave"]}, protocol="rest"))
    assert answer.sequence == 7
    assert answer.prediction.subset == "mmwave+wifi"
    np.testing.assert_allclose(np.reshape(answer.prediction.joints, (17, 3)), direct.joints)
    assert answer.prediction.action == direct.action
    assert answer.server_latency_s > 0


def test_bad_frames_are_answered_in_band_and_the_stream_stays_open(tiny_repo: Path) -> None:
    raw = sample_raw_frames()
    with live_grpc(tiny_repo) as live, grpc.insecure_channel(live.target) as channel:
        stream = LockStep(channel)
        ok = stream.send(rig_frame(0, 0.1, {"lidar": raw["lidar"]}))
        truncated = rig_frame(1, 0.2, {"lidar": raw["lidar"]})
        truncated.sensors["lidar"].tensor.data = truncated.sensors["lidar"].tensor.data[:-8]
        bad = stream.send(truncated)
        backwards = stream.send(rig_frame(2, 0.05, {"lidar": raw["lidar"]}))
        after = stream.send(rig_frame(3, 0.3, {"lidar": raw["lidar"], "wifi": raw["wifi"]}))
        stream.close()
    assert ok.WhichOneof("result") == "prediction"
    assert bad.error.code == "INVALID_ARGUMENT"
    assert "lidar: float64 tensor of shape [300, 3] needs 7200 bytes, got 7192" in bad.error.message
    assert backwards.error.code == "INVALID_ARGUMENT"
    assert "goes back in time" in backwards.error.message
    assert after.prediction.subset == "lidar+wifi"


def test_flood_beyond_the_queue_every_frame_answered_or_reported_dropped(tiny_repo: Path) -> None:
    files = sample_files(seed=3)
    n = 120
    options = StreamOptions(staleness_s=1.0, queue_size=2, max_inflight=1)
    frames = [rig_frame(i, 0.01 * i, {"depth": files["depth"], "lidar": files["lidar"]})
              for i in range(n)]
    with live_grpc(tiny_repo, stream_options=options) as live, \
            grpc.insecure_channel(live.target) as channel:
        answers = list(pb_grpc.RigStreamStub(channel).Stream(iter(frames)))
        counted = live.metric("rigserve_stream_frames_dropped_total", reason="queue_full")

    answered = [a.sequence for a in answers]
    dropped = [s for a in answers for s in a.dropped_sequences]
    assert answered == sorted(answered)  # order preserved
    assert len(set(answered)) == len(answered)
    assert sorted(answered + dropped) == list(range(n))  # nothing lost, nothing twice
    assert dropped  # the flood did overflow a 2-frame queue
    assert answers[-1].sequence == n - 1  # drop-oldest keeps the freshest frame
    assert answers[-1].dropped_total == len(dropped) == counted
    # Each report names only frames older than the answer it rides on.
    assert all(s < a.sequence for a in answers for s in a.dropped_sequences)
