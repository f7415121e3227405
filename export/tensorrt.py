"""TensorRT engines: built with the TensorRT Python API, or through ONNX Runtime's TensorRT EP.

Both need an NVIDIA GPU. ``unavailable_reason()`` says why not on this machine (None when
they can run); callers skip, never fail, where it is not None. The plan is built from the
portable ONNX graph (standard ops only: TensorRT's parser does not know ORT's contrib
fusions) with one optimisation profile covering batch 1..max_batch.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rigserve.export.runtime import Feeds, OrtRunner

logger = logging.getLogger(__name__)

WORKSPACE_BYTES = 2 << 30


class TensorRTError(RuntimeError):
    """TensorRT could not parse the graph or build the engine."""


def unavailable_reason() -> str | None:
    """Why TensorRT engines cannot be built here, or None when they can."""
    if importlib.util.find_spec("tensorrt") is None:
        return "the `tensorrt` Python package is not installed (pip install 'rigserve[gpu]')"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is visible (torch.cuda.is_available() is False)"
    return None


def ort_tensorrt_unavailable_reason() -> str | None:
    """Why ONNX Runtime's TensorRT execution provider cannot run here, or None."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    if "TensorrtExecutionProvider" not in have:
        return (f"onnxruntime has no TensorrtExecutionProvider (install onnxruntime-gpu); "
                f"available: {', '.join(have)}")
    return unavailable_reason()


def _profile_shapes(input_shapes: Mapping[str, tuple[int, ...]], max_batch: int
                    ) -> tuple[dict[str, tuple[int, ...]], ...]:
    """(min, opt, max) shapes per input: batch 1, max/2 (dynamic batcher's typical), max."""
    opt = max(1, max_batch // 2)
    return tuple({n: (b, *s) for n, s in input_shapes.items()} for b in (1, opt, max_batch))


def build_plan(onnx_path: Path, plan_path: Path, input_shapes: Mapping[str, tuple[int, ...]],
               *, max_batch: int, fp16: bool = True) -> Path:
    """Serialize a TensorRT engine for ``onnx_path``; ``input_shapes`` exclude the batch axis."""
    import tensorrt as trt

    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    # TensorRT 10 networks are always explicit-batch; 8.x needs the flag.
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    network = builder.create_network(0 if explicit is None else 1 << int(explicit))
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTError(f"{onnx_path.name}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fp16:
        if not builder.platform_has_fast_fp16:
            logger.warning("%s: this GPU has no fast FP16; building anyway", onnx_path.name)
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    lo, opt, hi = _profile_shapes(input_shapes, max_batch)
    for name in input_shapes:
        profile.set_shape(name, lo[name], opt[name], hi[name])
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTError(f"{onnx_path.name}: TensorRT failed to build the engine "
                            "(see the TensorRT log above)")
    plan_path.write_bytes(bytes(serialized))
    return plan_path


class TrtRunner:
    """Runs a serialized plan on the GPU; buffers are torch CUDA tensors."""

    def __init__(self, plan_path: Path) -> None:
        import tensorrt as trt
        import torch

        self._torch = torch
        self._trt = trt
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(plan_path.read_bytes())
        if self.engine is None:
            raise TensorRTError(f"{plan_path}: not a TensorRT engine for this GPU / version")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_input[n]]
        self.output_names = [n for n in names if not is_input[n]]

    def __call__(self, feeds: Feeds) -> dict[str, np.ndarray]:
        torch = self._torch
        stream = torch.cuda.current_stream()
        keep: list[Any] = []
        for name in self.input_names:
            x = torch.from_numpy(np.ascontiguousarray(feeds[name], dtype=np.float32)).cuda()
            keep.append(x)
            self.context.set_input_shape(name, tuple(x.shape))
            self.context.set_tensor_address(name, x.data_ptr())
        outputs: dict[str, Any] = {}
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(np.empty(0, self._trt.nptype(
                self.engine.get_tensor_dtype(name)))).dtype
            outputs[name] = torch.empty(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise TensorRTError("TensorRT execution failed")
        stream.synchronize()
        return {n: t.float().cpu().numpy() for n, t in outputs.items()}


def ort_tensorrt_runner(onnx_path: Path, input_shapes: Mapping[str, tuple[int, ...]], *,
                        max_batch: int, fp16: bool, cache_dir: Path) -> OrtRunner:
    """The alternative path: ORT's TensorRT EP builds (and caches) the engine itself."""

    def spec(shapes: Mapping[str, tuple[int, ...]]) -> str:
        return ",".join(f"{n}:{'x'.join(map(str, s))}" for n, s in shapes.items())

    lo, opt, hi = _profile_shapes(input_shapes, max_batch)
    options = {
        "trt_fp16_enable": str(fp16), "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_dir), "trt_profile_min_shapes": spec(lo),
        "trt_profile_opt_shapes": spec(opt), "trt_profile_max_shapes": spec(hi),
    }
    return OrtRunner(onnx_path, providers=[("TensorrtExecutionProvider", options),
                                           "CUDAExecutionProvider", "CPUExecutionProvider"])
