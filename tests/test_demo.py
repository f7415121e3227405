"""`rigserve demo --once` end to end, in its own process, as a newcomer runs it (slow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_once_runs_the_whole_pipeline_and_reports_every_protocol(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "rigserve", "demo", "--once", "--workdir", str(tmp_path),
           "--frames", "3", "--epochs", "1", "--http-port", "0", "--grpc-port", "0"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    for step in ("1/5 simulating", "2/5 training", "3/5 exporting", "4/5 serving", "5/5 driving"):
        assert step in text
    assert "REST rig endpoint" in text
    assert "gRPC rig stream" in text
    assert "0 failed" in text
    assert (tmp_path / "repo" / "manifest.json").exists()
    # The scripted failures show up as routing decisions, not errors.
    assert "lidar:absent" in text
    assert "depth:flat" in text
