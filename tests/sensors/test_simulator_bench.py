"""`rigserve bench simulate` runs end to end on a tiny setting and reports what it measured."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rigserve.cli import main as cli_main


def test_bench_simulate_reports_writer_sensor_and_reader_speeds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli_main(["bench", "simulate", "--subjects", "S01", "--actions", "A01", "--frames", "4",
                   "--sizes", "24x32,48x64", "--workers", "2", "--scratch", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| frames/s (files written) | CPU ms/frame, user | CPU ms/frame, kernel |" in out
    row = re.search(r"\| 24x32 \| 1 \| 4 \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", out)
    assert row is not None
    fps, user_ms = float(row.group(1)), float(row.group(2))
    assert fps > 0
    assert user_ms > 0.5  # rendering 7 sensors is CPU work: it must show up as user time
    assert "| 48x64 | 2 | 4 |" in out
    for sensor in ("depth", "lidar", "mmwave", "wifi", "rgb"):
        assert f"| {sensor} |" in out
    # Tables print 3 significant digits: under load this rate can fall below 100 ("85.3").
    no_files = re.search(r"\| all sensors, per frame \(setup amortised\) \| [\d.]+ \| [\d.]+ \| "
                         r"([\d.]+) \|", out)
    assert no_files is not None
    assert float(no_files.group(1)) > 0
    ceiling = re.search(r"creates (\d+) files/s in one process; at 7\.25 files per frame", out)
    assert ceiling is not None  # 7 frame files + ground_truth.npy over 4 frames
    assert "to_arrays()` with depth, lidar, mmwave, wifi: 4 frames at" in out
    assert not any(tmp_path.iterdir())  # scratch files are cleaned up
