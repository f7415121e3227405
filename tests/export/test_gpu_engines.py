"""TensorRT and GPU engines: built and checked where a CUDA GPU with TensorRT is present.

Skipped elsewhere with the reason (this project's CI machines have no GPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rigserve.export.exporter import ExportOptions, export_loaded
from rigserve.export.frames import synthetic_frames
from rigserve.export.manifest import load_manifest
from rigserve.export.tensorrt import (
    TrtRunner,
    ort_tensorrt_runner,
    ort_tensorrt_unavailable_reason,
    unavailable_reason,
)

from tests.export.conftest import tiny_run

_TRT = unavailable_reason()
_ORT_TRT = ort_tensorrt_unavailable_reason()

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(_TRT is not None, reason=f"TensorRT unavailable: {_TRT}")
def test_tensorrt_fp16_plans_for_every_subset_track_pytorch(tmp_path: Path) -> None:
    run = tiny_run(("depth", "lidar", "wifi"))
    repo = tmp_path / "repo"
    manifest = export_loaded(run, repo, ExportOptions(
        formats=("onnx", "tensorrt"), precisions=("fp16",), max_batch=8, parity_frames=16,
        triton=True))
    plans = [e for e in manifest.engines if e.format == "tensorrt"]
    assert len(plans) == 7
    for plan in plans:
        assert plan.path == f"engines/{plan.subset_name}.fp16.plan"
        # FP16 tracks fp32 within a few millimetres on these tiny random models.
        assert plan.accuracy_delta["mpjpe_mm_vs_pytorch"] < 20.0
        runner = TrtRunner(repo / plan.path)
        assert runner.input_names == list(plan.subset)
        for batch in (1, 8):  # both ends of the optimisation profile
            feeds = synthetic_frames(plan.subset, run.input_shapes, frames=batch,
                                     calibration=1).feeds(plan.subset)
            assert runner(feeds)["joints"].shape == (batch, 17, 3)
    load_manifest(repo, verify=True)


@pytest.mark.skipif(_ORT_TRT is not None, reason=f"ORT TensorRT EP unavailable: {_ORT_TRT}")
def test_ort_tensorrt_ep_runs_the_portable_graph(tmp_path: Path) -> None:
    run = tiny_run(("wifi",))
    repo = tmp_path / "repo"
    export_loaded(run, repo, ExportOptions(triton=True, max_batch=4, parity_frames=4))
    shapes = {"wifi": run.input_shapes["wifi"]}
    runner = ort_tensorrt_runner(repo / "triton" / "rig.wifi" / "1" / "model.onnx", shapes,
                                 max_batch=4, fp16=False, cache_dir=tmp_path / "cache")
    feeds = synthetic_frames(("wifi",), shapes, frames=4, calibration=1).feeds(("wifi",))
    cpu = load_manifest(repo).engines_for("wifi")[0]
    from rigserve.export.runtime import OrtRunner

    want = OrtRunner(repo / cpu.path)(feeds)["joints"]
    assert np.abs(runner(feeds)["joints"] - want).max() < 1e-3
