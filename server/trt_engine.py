"""Native TensorRT plans (``engines/<subset>.fp16.plan``) run with the TensorRT Python API.

No torch: device memory, pinned host staging buffers and CUDA streams come from
cuda-python's runtime bindings (``cuda.bindings.runtime``; ``cuda.cudart`` on older
releases). Each :class:`TrtEngine` deserializes its plan once and keeps one
:class:`_Slot` per engine instance: an execution context with its own stream and its
own device/host buffers sized for the plan's optimisation-profile maximum, so
``engine_instances`` batches of one engine run concurrently without sharing memory.

A run copies inputs into pinned host memory, queues host->device copies, the
enqueue and device->host copies on the slot's stream, and synchronizes once:
one round trip per batch. TensorRT releases the GIL while enqueuing and
``cudaStreamSynchronize`` blocks in C, so threads of the engine pool overlap.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.util
import logging
import queue
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rigserve.server.engines import EngineOptions
from rigserve.server.errors import InvalidInput, RepositoryError

logger = logging.getLogger(__name__)

#: Provider label reported in metrics (rigserve_engine_info) and model metadata.
PROVIDER = "TensorRT"


def _cudart() -> Any:
    """cuda-python's runtime module under either of its published import paths."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("cuda-python is not installed (pip install 'rigserve[gpu]')")


@functools.cache
def unavailable_reason() -> str | None:
    """Why native plans cannot run on this machine, or None when they can (cached)."""
    if importlib.util.find_spec("tensorrt") is None:
        return "the `tensorrt` package is not installed (pip install 'rigserve[gpu]')"
    try:
        cudart = _cudart()
    except ImportError as exc:
        return str(exc)
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess or count == 0:
        return f"no CUDA device is visible (cudaGetDeviceCount: {err}, {count} devices)"
    return None


def _check(result: Any, what: str) -> Any:
    """Unpack a cuda-python ``(err, *values)`` tuple, raising on a CUDA error."""
    cudart = _cudart()
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError(f"CUDA {what} failed: {err}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class _Tensor:
    """One I/O tensor of the plan: its dtype and the profile's largest shape."""

    name: str
    dtype: np.dtype[Any]
    max_shape: tuple[int, ...]
    min_shape: tuple[int, ...]

    @property
    def max_bytes(self) -> int:
        return int(np.prod(self.max_shape, dtype=np.int64)) * self.dtype.itemsize


class _Slot:
    """An execution context with its own stream and buffers (one engine instance)."""

    def __init__(self, engine: Any, tensors: Mapping[str, _Tensor]) -> None:
        cudart = _cudart()
        self.context = engine.create_execution_context()
        if self.context is None:
            raise RepositoryError("TensorRT could not create an execution context "
                                  "(out of GPU memory?)")
        self.stream = _check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.device: dict[str, int] = {}
        self.host: dict[str, np.ndarray] = {}
        self._host_ptrs: list[int] = []
        for t in tensors.values():
            nbytes = max(t.max_bytes, 1)
            self.device[t.name] = int(_check(cudart.cudaMalloc(nbytes), "cudaMalloc"))
            host_ptr = int(_check(cudart.cudaMallocHost(nbytes), "cudaMallocHost"))
            self._host_ptrs.append(host_ptr)
            # Pinned memory viewed as a flat numpy array: async copies need page-locked
            # host memory to overlap; the view is reshaped per batch.
            raw = memoryview((ctypes.c_byte * nbytes).from_address(host_ptr)).cast("B")
            self.host[t.name] = np.frombuffer(raw, dtype=t.dtype)
            # Buffers never move, so addresses are bound once for the slot's lifetime.
            self.context.set_tensor_address(t.name, self.device[t.name])

    def release(self) -> None:
        cudart = _cudart()
        for ptr in self.device.values():
            cudart.cudaFree(ptr)
        for ptr in self._host_ptrs:
            cudart.cudaFreeHost(ptr)
        cudart.cudaStreamDestroy(self.stream)
        self.device.clear()
        self.host.clear()


class TrtEngine:
    """A deserialized TensorRT plan with ``options.instances`` execution contexts."""

    def __init__(self, name: str, path: Path, options: EngineOptions) -> None:
        import tensorrt as trt

        self.name = name
        self.provider = PROVIDER
        self._trt_logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._trt_logger)
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise RepositoryError(f"engine {name!r}: {path.name} is not a TensorRT plan for "
                                  f"this GPU and TensorRT {trt.__version__}")
        self._tensors = self._io_tensors(trt)
        self.input_names = tuple(n for n, m in self._modes.items() if m == "input")
        self.output_names = tuple(n for n, m in self._modes.items() if m == "output")
        self._pool: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        self._slots = [_Slot(self._engine, self._tensors) for _ in range(options.instances)]
        for slot in self._slots:
            self._pool.put(slot)
        logger.info("TensorRT %s: %d context(s), batch %d..%d", name, len(self._slots),
                    self.min_batch, self.max_batch)

    def _io_tensors(self, trt: Any) -> dict[str, _Tensor]:
        eng = self._engine
        self._modes: dict[str, str] = {}
        tensors: dict[str, _Tensor] = {}
        for i in range(eng.num_io_tensors):
            n = eng.get_tensor_name(i)
            is_input = eng.get_tensor_mode(n) == trt.TensorIOMode.INPUT
            self._modes[n] = "input" if is_input else "output"
            dtype = np.dtype(trt.nptype(eng.get_tensor_dtype(n)))
            if is_input:
                # (min, opt, max) of profile 0: export builds exactly one profile.
                lo, _opt, hi = eng.get_tensor_profile_shape(n, 0)
                tensors[n] = _Tensor(n, dtype, tuple(hi), tuple(lo))
            else:
                tensors[n] = _Tensor(n, dtype, (), ())
        # Output maxima follow from the inputs at their maxima (static output rank).
        probe = eng.create_execution_context()
        for n, t in tensors.items():
            if self._modes[n] == "input":
                probe.set_input_shape(n, t.max_shape)
        for n, t in list(tensors.items()):
            if self._modes[n] == "output":
                shape = tuple(probe.get_tensor_shape(n))
                tensors[n] = _Tensor(n, t.dtype, shape, shape)
        del probe
        return tensors

    @property
    def max_batch(self) -> int:
        return min(self._tensors[n].max_shape[0] for n in self.input_names)

    @property
    def min_batch(self) -> int:
        return max(self._tensors[n].min_shape[0] for n in self.input_names)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One batch: H2D, enqueue, D2H on a free slot's stream, one synchronize."""
        self._check_inputs(inputs)
        slot = self._pool.get()
        try:
            return self._run_on(slot, inputs)
        finally:
            self._pool.put(slot)

    def _check_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        missing = sorted(set(self.input_names) - set(inputs))
        if missing:
            raise InvalidInput(f"engine {self.name}: missing input(s) {missing}; inputs are "
                               f"{list(self.input_names)}")
        for n in self.input_names:
            t, shape = self._tensors[n], tuple(inputs[n].shape)
            ok = len(shape) == len(t.max_shape) and all(
                lo <= d <= hi for d, lo, hi in zip(shape, t.min_shape, t.max_shape, strict=True))
            if not ok:
                raise InvalidInput(f"engine {self.name}: input {n} of shape {list(shape)} is "
                                   f"outside the plan's profile {list(t.min_shape)}.."
                                   f"{list(t.max_shape)}")

    def _run_on(self, slot: _Slot, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = _cudart()
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        ctx = slot.context
        for n in self.input_names:
            x = inputs[n]
            t = self._tensors[n]
            staged = slot.host[n][:x.size].reshape(x.shape)
            np.copyto(staged, x, casting="same_kind")  # float32 in, plan dtype out
            ctx.set_input_shape(n, x.shape)
            _check(cudart.cudaMemcpyAsync(slot.device[n], staged.ctypes.data,
                                          x.size * t.dtype.itemsize, h2d, slot.stream),
                   "cudaMemcpyAsync H2D")
        if not ctx.execute_async_v3(int(slot.stream)):
            raise RuntimeError(f"engine {self.name}: TensorRT enqueue failed")
        shapes: dict[str, tuple[int, ...]] = {}
        for n in self.output_names:
            shapes[n] = tuple(ctx.get_tensor_shape(n))
            nbytes = int(np.prod(shapes[n], dtype=np.int64)) * self._tensors[n].dtype.itemsize
            _check(cudart.cudaMemcpyAsync(slot.host[n].ctypes.data, slot.device[n], nbytes,
                                          d2h, slot.stream), "cudaMemcpyAsync D2H")
        _check(cudart.cudaStreamSynchronize(slot.stream), "cudaStreamSynchronize")
        # Copy out of the pinned buffer (the slot reuses it); fp16 outputs become float32,
        # the dtype the manifest declares.
        return {n: slot.host[n][:int(np.prod(s, dtype=np.int64))].reshape(s)
                .astype(np.float32, copy=True) for n, s in shapes.items()}

    def close(self) -> None:
        """Free device and pinned memory (also done when the engine is collected)."""
        while self._slots:
            self._slots.pop().release()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: CUDA may already be gone
            logger.debug("TensorRT %s: buffers not freed at shutdown", self.name)
