"""Engine back ends: one builder per (format, precision), registered by name.

A builder turns a subset's portable ONNX graph into the engine file the server loads and
returns a runner for it, so parity runs exactly what is published. ``unavailable`` says
why a back end cannot run on this machine (a GPU back end on a CPU box); the exporter
refuses such a request up front, before any work, with that reason.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rigserve.export.onnx_export import optimize_with_ort
from rigserve.export.quantize import convert_fp16, quantize_int8
from rigserve.export.runtime import OrtRunner, Runner

from rigserve.registry import Registry


@dataclass(frozen=True)
class BuildContext:
    """What a builder gets for one subset."""

    subset_name: str
    portable: Path  # checked ONNX graph, standard ops only
    repo: Path  # the staging repository root
    input_shapes: Mapping[str, tuple[int, ...]]  # per input, without the batch axis
    calibration: Mapping[str, np.ndarray]  # (N, ...) model-ready frames of the subset
    max_batch: int
    optimization: str  # ORT level baked into ONNX files: "basic" | "extended"


@dataclass(frozen=True)
class BuiltEngine:
    path: str  # relative to the repository root
    runner: Runner


@dataclass(frozen=True)
class Backend:
    format: str
    precision: str
    extension: str
    build: Callable[[BuildContext], BuiltEngine]
    unavailable: Callable[[], str | None]

    def relpath(self, subset_name: str) -> str:
        return f"engines/{subset_name}.{self.precision}.{self.extension}"


#: (format, precision) -> how to build that engine.
BACKENDS: Registry[tuple[str, str], Backend] = Registry("engine back end (format, precision)")


def register_backend(fmt: str, precision: str, extension: str,
                     unavailable: Callable[[], str | None] = lambda: None
                     ) -> Callable[[Callable[[BuildContext], BuiltEngine]],
                                   Callable[[BuildContext], BuiltEngine]]:
    def deco(fn: Callable[[BuildContext], BuiltEngine]) -> Callable[[BuildContext], BuiltEngine]:
        BACKENDS.add((fmt, precision), Backend(fmt, precision, extension, fn, unavailable))
        return fn

    return deco


def get_backend(fmt: str, precision: str) -> Backend:
    return BACKENDS[(fmt, precision)]


def _target(ctx: BuildContext, fmt: str, precision: str) -> tuple[str, Path]:
    rel = BACKENDS[(fmt, precision)].relpath(ctx.subset_name)
    path = ctx.repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    return rel, path


# ---- ONNX Runtime ---------------------------------------------------------------------


@register_backend("onnx", "fp32", "onnx")
def _onnx_fp32(ctx: BuildContext) -> BuiltEngine:
    rel, path = _target(ctx, "onnx", "fp32")
    optimize_with_ort(ctx.portable, path, level=ctx.optimization)
    return BuiltEngine(rel, OrtRunner(path))


@register_backend("onnx", "int8", "onnx")
def _onnx_int8(ctx: BuildContext) -> BuiltEngine:
    rel, path = _target(ctx, "onnx", "int8")
    with tempfile.TemporaryDirectory(prefix="rigserve-int8-") as tmp:
        qdq = quantize_int8(ctx.portable, Path(tmp) / "qdq.onnx", ctx.calibration)
        # ORT folds each QuantizeLinear/DequantizeLinear pair into integer kernels here.
        optimize_with_ort(qdq, path, level=ctx.optimization)
    return BuiltEngine(rel, OrtRunner(path))


def _cuda_unavailable() -> str | None:
    import onnxruntime as ort

    have = ort.get_available_providers()
    if "CUDAExecutionProvider" not in have:
        return ("FP16 ONNX engines run on GPUs: onnxruntime has no CUDAExecutionProvider "
                f"here (available: {', '.join(have)}); use int8 for CPUs")
    return None


@register_backend("onnx", "fp16", "onnx", unavailable=_cuda_unavailable)
def _onnx_fp16(ctx: BuildContext) -> BuiltEngine:
    rel, path = _target(ctx, "onnx", "fp16")
    convert_fp16(ctx.portable, path)
    return BuiltEngine(rel, OrtRunner(path, providers=("CUDAExecutionProvider",)))


# ---- TensorRT -------------------------------------------------------------------------


def _trt_unavailable() -> str | None:
    from rigserve.export.tensorrt import unavailable_reason

    return unavailable_reason()


def _tensorrt(ctx: BuildContext, precision: str) -> BuiltEngine:
    from rigserve.export.tensorrt import TrtRunner, build_plan

    rel, path = _target(ctx, "tensorrt", precision)
    build_plan(ctx.portable, path, ctx.input_shapes, max_batch=ctx.max_batch,
               fp16=precision == "fp16")
    return BuiltEngine(rel, TrtRunner(path))


@register_backend("tensorrt", "fp16", "plan", unavailable=_trt_unavailable)
def _tensorrt_fp16(ctx: BuildContext) -> BuiltEngine:
    return _tensorrt(ctx, "fp16")


@register_backend("tensorrt", "fp32", "plan", unavailable=_trt_unavailable)
def _tensorrt_fp32(ctx: BuildContext) -> BuiltEngine:
    return _tensorrt(ctx, "fp32")
