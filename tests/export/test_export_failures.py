"""An export that cannot be trusted fails loudly, names what went wrong, publishes nothing."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
import torch
from rigserve.export.exporter import ExportError, ExportOptions, export_loaded
from rigserve.export.tensorrt import unavailable_reason
from rigserve.training.checkpoint import LoadedRun
from torch import nn

from tests.export.conftest import tiny_run


class _Wrapped(nn.Module):
    """A run model whose subset modules are replaced by ``make(subset_module)``."""

    def __init__(self, run: LoadedRun, make: type[nn.Module]) -> None:
        super().__init__()
        self.inner = run.model
        self.make = make
        self.output_names = run.model.output_names

    def subset_model(self, subset: tuple[str, ...]) -> nn.Module:
        return self.make(self.inner.subset_model(subset))


class _DiffersInOnnx(nn.Module):
    """Adds 1 cm to the joints only while exporting: the ONNX graph is not the model."""

    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.sub = sub
        self.output_names = sub.output_names

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        joints, *rest = self.sub(*xs)
        if torch.onnx.is_in_onnx_export():
            joints = joints + 0.01
        return (joints, *rest)


class _BakesBatch(nn.Module):
    """Reshapes with a Python int: tracing records the traced batch size as a constant."""

    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.sub = sub
        self.output_names = sub.output_names

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        joints, *rest = self.sub(*xs)
        batch = int(xs[0].shape[0])
        return (joints.reshape(batch, 51).reshape(batch, 17, 3), *rest)


def _run_with(make: type[nn.Module]) -> LoadedRun:
    run = tiny_run(("depth", "wifi"))
    run.model = _Wrapped(run, make)
    return run


def test_fp32_parity_failure_names_subset_and_error_and_publishes_nothing(
        tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"engine rig\.depth \(onnx fp32\): fp32 parity "
                       r"failed on 'joints': max abs error 0\.01 .* tolerance 0\.0001"):
        export_loaded(_run_with(_DiffersInOnnx), tmp_path / "repo",
                      ExportOptions(parity_frames=4))
    assert list(tmp_path.iterdir()) == []  # neither the repo nor a staging folder


def test_batch_size_baked_into_the_graph_is_caught(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"engine rig\.depth \(onnx fp32\): build or run "
                       r"failed: .*Reshape"):
        export_loaded(_run_with(_BakesBatch), tmp_path / "repo", ExportOptions(parity_frames=8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"formats": ("coreml",)}, r"unknown format \['coreml'\]; accepted: onnx, tensorrt"),
    ({"precisions": ("fp8",)}, r"unknown precision \['fp8'\]; accepted: fp32, fp16, int8"),
    ({"exporter": "jit"}, r"unknown exporter \['jit'\]; accepted: .*torchscript"),
    ({"max_batch": 0}, r"max_batch must be >= 1, got 0"),
])
def test_bad_options_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ExportError, match=message):
        ExportOptions(**kwargs)  # type: ignore[arg-type]


def test_unknown_or_foreign_subset_is_refused(tmp_path: Path) -> None:
    run = tiny_run(("depth", "wifi"))
    with pytest.raises(ExportError, match=r"subset 'lidar' is not a subset of the run's "
                       r"modalities \['depth', 'wifi'\]"):
        export_loaded(run, tmp_path / "r", ExportOptions(subsets=("lidar",)))
    with pytest.raises(ExportError, match=r"subset 'sonar': .*unknown modality 'sonar'"):
        export_loaded(run, tmp_path / "r", ExportOptions(subsets=("sonar",)))


@pytest.mark.skipif(unavailable_reason() is None, reason="TensorRT is available here")
def test_tensorrt_without_gpu_is_refused_up_front_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"cannot build tensorrt fp16 engines on this "
                       r"machine: .*(tensorrt|CUDA)"):
        export_loaded(tiny_run(("wifi",)), tmp_path / "repo",
                      ExportOptions(formats=("tensorrt",), precisions=("fp16",)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(),
                    reason="ORT has CUDA here, fp16 ONNX engines can be built")
def test_fp16_onnx_on_a_cpu_only_onnxruntime_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"cannot build onnx fp16 engines on this machine: "
                       r".*no CUDAExecutionProvider.*use int8 for CPUs"):
        export_loaded(tiny_run(("wifi",)), tmp_path / "repo",
                      ExportOptions(precisions=("fp16",)))


def test_output_folder_that_is_not_a_repository_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="is not a rigserve model repository"):
        export_loaded(tiny_run(("wifi",)), tmp_path, ExportOptions(parity_frames=4))
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_any_parity_failure_is_an_export_error_the_cli_reports_as_a_message() -> None:
    import numpy as np
    from rigserve.export.errors import ExportError
    from rigserve.export.parity import check_fp32

    reference = {"joints": np.zeros((2, 17, 3), np.float32)}
    with pytest.raises(ExportError, match=r"engine triton rig\.lidar: fp32 parity failed"):
        check_fp32("triton rig.lidar", {"max_abs_err_joints": 0.5}, reference, 1e-4)
