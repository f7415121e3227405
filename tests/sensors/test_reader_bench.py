"""`rigserve bench reader` on a tiny folder, and the sensors package staying torch-free."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from rigserve.bench import reader
from tests.sensors.mmfi_folder import write_folder


def test_reader_bench_reports_every_modality_and_the_dataset_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_folder(tmp_path, ["S01"], ["A01"], frames=3)
    parser = argparse.ArgumentParser()
    reader.add_arguments(parser)
    args = parser.parse_args(["--data", str(tmp_path), "--workers", "2"])
    assert reader.run(args) == 0
    out = capsys.readouterr().out
    for modality in ("depth", "lidar", "mmwave", "wifi"):
        assert f"| {modality} | 3 |" in out
    assert "| to_arrays(), depth+lidar+mmwave+wifi | 2 |" in out
    assert not (tmp_path / "BENCHMARKS.md").exists()


def test_importing_the_sensors_data_path_does_not_import_torch() -> None:
    code = ("import sys, rigserve.sensors, rigserve.sensors.dataset, rigserve.sensors.preprocess;"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False"
