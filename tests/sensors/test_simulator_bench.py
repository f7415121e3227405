"""`rigserve bench simulate` runs end to end on a tiny setting and reports what it measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigserve.cli import main as cli_main


def test_bench_simulate_reports_writer_sensor_and_reader_speeds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli_main(["bench", "simulate", "--subjects", "S01", "--actions", "A01", "--frames", "4",
                   "--sizes", "24x32,48x64", "--workers", "2", "--scratch", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| 24x32 | 1 | 4 |" in out
    assert "| 48x64 | 2 | 4 |" in out
    for sensor in ("depth", "lidar", "mmwave", "wifi", "rgb"):
        assert f"| {sensor} |" in out
    assert "to_arrays()` with depth, lidar, mmwave, wifi: 4 frames at" in out
    assert not any(tmp_path.iterdir())  # scratch files are cleaned up
