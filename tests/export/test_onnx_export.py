"""The ONNX step alone: both registered exporters give a checked graph with a batch axis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from rigserve.export.onnx_export import EXPORTERS, OnnxExportError, export_onnx
from rigserve.export.runtime import OrtRunner

from tests.export.conftest import tiny_run


def _export(tmp_path: Path, exporter: str) -> tuple[Path, torch.nn.Module]:
    run = tiny_run(("lidar",))
    module = run.model.subset_model(("lidar",)).eval()
    example = (torch.rand(2, *run.input_shapes["lidar"]),)
    path = tmp_path / f"{exporter}.onnx"
    export_onnx(module, example, ("lidar",), {"joints": (-1, 17, 3), "action_logits": (-1, 27)},
                path, exporter=exporter, opset=18)
    return path, module


@pytest.mark.parametrize("exporter", [
    "torchscript", pytest.param("dynamo", marks=pytest.mark.slow)])
def test_exporter_gives_symbolic_batch_and_pinned_output_shapes(tmp_path: Path,
                                                                exporter: str) -> None:
    assert exporter in EXPORTERS
    path, module = _export(tmp_path, exporter)
    model = onnx.load(str(path))
    assert model.opset_import[0].version >= 17
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (*model.graph.input, *model.graph.output)}
    assert dims == {"lidar": ["batch", 64, 4], "joints": ["batch", 17, 3],
                    "action_logits": ["batch", 27]}
    runner = OrtRunner(path)
    for batch in (1, 7):
        x = np.random.default_rng(batch).random((batch, 64, 4), dtype=np.float32)
        with torch.no_grad():
            want = module(torch.from_numpy(x))[0].numpy()
        assert np.abs(runner({"lidar": x})["joints"] - want).max() <= 1e-4


def test_old_opset_and_unknown_exporter_are_refused(tmp_path: Path) -> None:
    module = tiny_run(("wifi",)).model.subset_model(("wifi",))
    example = (torch.rand(2, 3, 114, 10),)
    outputs = {"joints": (-1, 17, 3), "action_logits": (-1, 27)}
    with pytest.raises(OnnxExportError, match=r"opset 13 is too old.*>= 17"):
        export_onnx(module, example, ("wifi",), outputs, tmp_path / "m.onnx", opset=13)
    with pytest.raises(OnnxExportError, match="unknown ONNX exporter 'jit'; registered: dynamo, "
                       "torchscript"):
        export_onnx(module, example, ("wifi",), outputs, tmp_path / "m.onnx", exporter="jit")
