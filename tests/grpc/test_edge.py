"""The edge client: failure scripts, MM-Fi replay and the stream client on a real server."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest
from rigserve.sensors.formats import frame_path, ground_truth_path, write_frame, write_ground_truth
from rigserve.server.grpc import StreamOptions

from rigserve.cli import main as cli_main
from rigserve.edge import (
    EdgeSummary,
    FailureRule,
    FailureScript,
    SourceFrame,
    mmfi_frames,
    open_channel,
    parse_failures,
    stream_frames,
)
from tests.core.cli_errors import assert_one_line_error
from tests.grpc.grpc_server import live_grpc
from tests.server.live_server import wait_until
from tests.server.repo_factory import sample_files, sample_raw_frames


def test_failure_script_parses_windows_probabilities_and_units() -> None:
    assert parse_failures("lidar@5s-15s,wifi:p=0.2") == (
        FailureRule("lidar", 5.0, 15.0), FailureRule("wifi", 0.0, math.inf, 0.2))
    assert parse_failures(" depth@1500ms- , mmwave@2-4:p=0.5 ") == (
        FailureRule("depth", 1.5, math.inf), FailureRule("mmwave", 2.0, 4.0, 0.5))
    assert parse_failures("") == ()


@pytest.mark.parametrize(("script", "match"), [
    ("radar@1s-2s", "unknown modality 'radar'; accepted: depth, lidar, mmwave, wifi"),
    ("lidar", "is not MODALITY"),
    ("lidar@5s-2s", "window ends at 2.0 s, not after its start at 5.0 s"),
    ("wifi:p=1.5", r"p=1.5 must be in \(0, 1\]"),
    ("lidar@soon-2s", "time 'soon' is not a number of seconds"),
])
def test_failure_script_errors_name_the_rule_and_the_grammar(script: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_failures(script)


def test_failure_script_silences_in_window_and_at_the_given_rate() -> None:
    script = FailureScript(parse_failures("lidar@1s-2s,wifi:p=0.2"), seed=4)
    assert "lidar" not in script.silenced(0.99)
    assert "lidar" in script.silenced(1.0)
    assert "lidar" not in script.silenced(2.0)
    wifi_missing = sum("wifi" in script.silenced(t / 100) for t in range(2000))
    assert 300 < wifi_missing < 500  # 20 % of 2000, binomial sd ~18


def _source(n: int) -> list[SourceFrame]:
    files = sample_files(seed=5)
    truth = np.zeros((17, 3), np.float32)
    return [SourceFrame({m: files[m] for m in ("depth", "lidar")}, truth, str(i))
            for i in range(n)]


def test_stream_client_reports_subsets_transitions_and_error(tiny_repo: Path) -> None:
    views = []
    # A queue that holds the whole run: drops (tested elsewhere) would hide frames here.
    options = StreamOptions(staleness_s=0.035, queue_size=64)
    with live_grpc(tiny_repo, stream_options=options) as live, open_channel(live.target) as ch:
        summary = stream_frames(ch, "edge-1", _source(30), fps=100,
                                failures=FailureScript(parse_failures("lidar@0.1s-0.2s")),
                                on_answer=views.append)
    assert [v.sequence for v in views] == list(range(30))
    assert (summary.sent, summary.answered, summary.errors) == (30, 30, 0)
    assert views[12].sent == ("depth",)
    assert views[12].subset == "depth+lidar"  # held within the 35 ms window
    assert views[15].subset == "depth"
    assert views[25].subset == "depth+lidar"
    assert [(m, s) for _seq, m, s, _r in summary.transitions if m == "lidar"] == [
        ("lidar", "ONLINE"), ("lidar", "OFFLINE"), ("lidar", "ONLINE")]
    assert summary.subsets["depth"] >= 5
    assert all(v.mpjpe_mm is not None and v.mpjpe_mm > 0 for v in views)
    assert summary.latency_ms(50) > 0


def test_stream_client_reconnects_when_the_server_restarts(tiny_repo: Path) -> None:
    answers: list[int] = []
    result: list[EdgeSummary] = []
    with live_grpc(tiny_repo) as first:
        port = first.port
        channel = open_channel(first.target)
        client = threading.Thread(target=lambda: result.append(stream_frames(
            channel, "edge-1", _source(200), fps=100, max_reconnects=10,
            on_answer=lambda v: answers.append(v.sequence))))
        client.start()
        wait_until(lambda: len(answers) >= 10, "ten answers from the first server")
        # Leaving the block drains the stream (UNAVAILABLE) and stops the first server.
    before_restart = len(answers)
    with live_grpc(tiny_repo, grpc_port=port):
        client.join(30)
    channel.close()
    (summary,) = result
    assert summary.reconnects >= 1
    assert len(answers) > before_restart  # the second server answered the rest
    assert summary.errors == 0
    assert answers == sorted(answers)
    # Frames captured while no stream was open (at least the 0.5 s back-off at 100 fps)
    # are skipped, not sent late in a burst; the rest are sent.
    assert summary.skipped_offline >= 40
    assert summary.sent + summary.skipped_offline == 200
    # Every frame sent is accounted for: answered, dropped, or on the wire at the switch.
    assert summary.answered + summary.dropped_by_server + summary.unanswered == summary.sent
    assert summary.unanswered <= 2


def test_stream_client_gives_up_after_its_reconnects(tiny_repo: Path) -> None:
    with live_grpc(tiny_repo) as live:
        port = live.port
    with open_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError) as err:
        stream_frames(channel, "edge-1", _source(5), fps=0, max_reconnects=1)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def _write_mmfi(root: Path, frames: int) -> None:
    raw = sample_raw_frames(seed=6)
    for i in range(1, frames + 1):
        for m in ("lidar", "wifi"):
            path = frame_path(root, "E01", "S01", "A03", m, i)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_frame(m, path, raw[m])
    rng = np.random.default_rng(0)
    write_ground_truth(ground_truth_path(root, "E01", "S01", "A03"),
                       rng.normal(0, 0.3, (frames, 17, 3)).astype(np.float32))


def test_mmfi_replay_reads_file_bytes_and_ground_truth(tmp_path: Path) -> None:
    _write_mmfi(tmp_path, 4)
    frames = list(mmfi_frames(tmp_path))
    assert [f.key for f in frames] == [f"E01/S01/A03#{i}" for i in range(1, 5)]
    assert sorted(frames[0].sensors) == ["lidar", "wifi"]
    assert frames[0].sensors["lidar"] == frame_path(tmp_path, "E01", "S01", "A03", "lidar",
                                                    1).read_bytes()
    assert frames[3].ground_truth.shape == (17, 3)
    assert len(list(mmfi_frames(tmp_path, limit=2))) == 2
    with pytest.raises(ValueError, match="found no E0x/Sxx/Axx sequence folder"):
        list(mmfi_frames(tmp_path / "E01"))


def test_edge_cli_replays_a_folder_and_prints_view_and_summary(
        tiny_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_mmfi(tmp_path, 6)
    with live_grpc(tiny_repo, api_keys=["edge-key"]) as live:
        code = cli_main(["edge", "--target", live.target, "--rig", "r9", "--data",
                         str(tmp_path), "--fps", "0", "--fail", "wifi@0s-", "--api-key",
                         "edge-key"])
        denied = cli_main(["edge", "--target", live.target, "--rig", "r9", "--data",
                           str(tmp_path), "--fps", "0"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "sent lidar" in out
    assert "-> lidar " in out
    assert "frames sent 6, answered 6, errors 0" in out
    assert "subsets: lidar 6" in out
    assert denied == 1
    assert "UNAUTHENTICATED" in err


def test_edge_cli_rejects_a_bad_failure_script(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["edge", "--target", "127.0.0.1:1", "--rig", "r", "--simulate",
                     "--fail", "sonar@1s-2s"])
    assert code == 2
    assert "unknown modality 'sonar'" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--simulate", "--fps", "-1"], "argument --fps: expected frames per second >= 0"),
    (["--simulate", "--frames", "0"], "argument --frames: expected an integer >= 1, got 0"),
    (["--simulate", "--reconnects", "-1"], "argument --reconnects: expected an integer >= 0"),
    (["--simulate", "--target", "127.0.0.1:99999"],
     "argument --target: expected HOST:PORT with a port in 1..65535"),
    (["--simulate", "--action", "A28"], "--action: unknown action 'A28'"),
    (["--simulate", "--tls-ca", "no-such-ca.pem"], "--tls-ca: no-such-ca.pem is not a file"),
    (["--data", "no-such-folder"], "--data: MM-Fi root no-such-folder is not a directory"),
    (["--data", "."], "found no E0x/Sxx/Axx sequence folder"),
])
def test_edge_cli_refuses_bad_options_before_connecting(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Port 1 has no server: a run that got as far as connecting would fail UNAVAILABLE.
    try:
        code = cli_main(["edge", "--target", "127.0.0.1:1", "--rig", "r", "--reconnects", "0",
                         *argv])
    except SystemExit as exc:  # argparse: its usage lines, then the error line
        code = exc.code
    assert code == 2
    assert_one_line_error(capsys.readouterr().err.splitlines()[-1] + "\n", "edge", message)
