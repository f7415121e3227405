"""The compose stack's one-shot job, run as written outside Docker: simulate, train and
export a repository the server then serves, with the Triton layout the Kubernetes
manifests point at; a second run leaves the finished repository alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import DEPLOY
from tests.server.live_server import serve_in_thread
from tests.server.repo_factory import sample_files

BUILDER = DEPLOY / "docker" / "build-repository.sh"
TINY = {
    "SIM_ARGS": "--subjects S01-S02 --actions A01-A02 --frames 6 --depth-size 60x80 "
                "--modalities depth,lidar,mmwave,wifi --workers 1",
    "TRAIN_ARGS": "--epochs 1 --no-progress",
    "EXPORT_ARGS": "--triton --parity-frames 4 --calibration-frames 4 --no-progress",
}


def _run_builder(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **TINY, "MODELS_DIR": str(tmp_path / "models"),
           "WORK_DIR": str(tmp_path / "work"), "MODEL_NAME": "rig",
           # `rigserve` resolves to this interpreter's environment, as in the image.
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["/bin/sh", str(BUILDER)], env=env, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.mark.slow
def test_builder_job_produces_a_servable_repository_with_the_triton_layout(
        tmp_path: Path) -> None:
    first = _run_builder(tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    repo = tmp_path / "models" / "rig"
    manifest = json.loads((repo / "manifest.json").read_text())
    assert not (tmp_path / "models" / ".rig.partial").exists()
    for engine in manifest["engines"]:
        model = repo / "triton" / engine["name"]
        assert (model / "config.pbtxt").is_file(), model
        assert (model / "1" / "model.onnx").is_file(), model

    again = _run_builder(tmp_path)
    assert again.returncode == 0
    assert "nothing to build" in again.stdout

    with serve_in_thread(repo) as server:
        files = {m: (f"frame001.{m}", data) for m, data in sample_files().items()
                 if m != "lidar"}
        answer = httpx.post(f"{server.url}/v1/rigs/r1/infer", files=files, timeout=30.0)
        assert answer.status_code == 200, answer.text
        assert answer.json()["subset"] == "depth+mmwave+wifi"
