"""Reduced-precision ONNX graphs: INT8 for CPU edge boxes, FP16 for GPUs.

INT8 is **static** QDQ quantisation with calibration frames, weights per output channel.
The encoders are mostly convolutions (depth, CSI) and shared point MLPs; dynamic
quantisation only quantises MatMul/Gemm weights and turns Conv into ConvInteger with
activation ranges guessed per batch at run time, which is slower on the CPU provider and
loses more accuracy than calibrated ranges. QDQ lets ORT fuse each Conv/MatMul with its
Quantize/Dequantize pair into integer kernels (QLinearConv, MatMulInteger) and leaves
anything it cannot fuse (GELU's Erf, TopK, Gather) in float. Activations are uint8 and
weights int8 (U8S8), ORT's recommended CPU format; ``reduce_range`` keeps weights to 7 bits
so the VPMADDUBSW path on AVX2 machines without VNNI cannot saturate.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

logger = logging.getLogger(__name__)


class _FrameReader(CalibrationDataReader):  # type: ignore[misc]
    """Feeds calibration frames ``batch`` at a time, as ORT's calibrator expects."""

    def __init__(self, frames: Mapping[str, np.ndarray], batch: int) -> None:
        self._batches = _batches(frames, batch)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _batches(frames: Mapping[str, np.ndarray], batch: int) -> Iterator[dict[str, np.ndarray]]:
    total = len(next(iter(frames.values())))
    for start in range(0, total, batch):
        yield {k: np.ascontiguousarray(v[start:start + batch], dtype=np.float32)
               for k, v in frames.items()}


class _DropOrtQuantizationChatter(logging.Filter):
    """ORT's quantiser logs per-tensor notes on the *root* logger; keep them at debug here."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "onnxruntime" in record.pathname and "quantization" in record.pathname:
            logger.debug("onnxruntime.quantization: %s", record.getMessage())
            return False
        return True


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    chatter = _DropOrtQuantizationChatter()
    targets = [root, *root.handlers]
    for t in targets:
        t.addFilter(chatter)
    try:
        yield
    finally:
        for t in targets:
            t.removeFilter(chatter)


def quantize_int8(src: Path, dst: Path, calibration: Mapping[str, np.ndarray], *,
                  batch: int = 16, method: str = "minmax",
                  exclude_op_types: Sequence[str] = ()) -> Path:
    """Static QDQ INT8 of the float graph ``src`` calibrated on ``calibration`` frames."""
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise ValueError(f"unknown calibration method {method!r}; accepted: {', '.join(methods)}")
    if not calibration or len(next(iter(calibration.values()))) == 0:
        raise ValueError("INT8 quantisation needs at least one calibration frame")
    with tempfile.TemporaryDirectory(prefix="rigserve-int8-") as tmp, _quiet_root_logger():
        prepared = Path(tmp) / "prepared.onnx"
        # Symbolic shape inference + ORT basic optimisation so the quantiser sees every
        # tensor's shape and folded constants (ORT's documented pre-processing step).
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(dst), _FrameReader(calibration, batch),
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
            calibrate_method=methods[method],
            op_types_to_quantize=None if not exclude_op_types else _ops_except(
                prepared, exclude_op_types),
            extra_options={"CalibTensorRangeSymmetric": False},
        )
    return dst


def _ops_except(model_path: Path, excluded: Sequence[str]) -> list[str]:
    ops = {n.op_type for n in onnx.load(str(model_path)).graph.node}
    return sorted(ops - set(excluded))


def convert_fp16(src: Path, dst: Path) -> Path:
    """FP16 weights and activations, float32 inputs/outputs kept (keep_io_types)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    # TopK / reductions over 1e4-scale masks overflow fp16 (max 65504) only at 6.5e4; the
    # point encoder's padding penalty (1e4) stays representable.
    half = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    onnx.save(half, str(dst))
    return dst
