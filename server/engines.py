"""Engine back ends: a registry from manifest ``format`` to a loader (style.md §2).

An :class:`Engine` runs one subset's model on a batch of model-ready tensors. The ONNX
back end keeps one ONNX Runtime session per engine with providers in the order
TensorRT EP, CUDA EP, CPU, by availability; the TensorRT back end loads native plans
where the `tensorrt` package imports (GPU machines only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rigserve.server.errors import RepositoryError

from rigserve.registry import Registry

logger = logging.getLogger(__name__)

#: Preference order; only the ones this onnxruntime build offers are used.
ORT_PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


@dataclass(frozen=True)
class EngineOptions:
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    #: Batches of one engine that may run at once (TensorRT: one execution context each).
    instances: int = 1


class Engine(Protocol):
    """What the batcher needs from a loaded engine."""

    name: str
    provider: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; inputs and outputs carry a leading batch axis."""
        ...


Loader = Callable[[str, Path, EngineOptions], Engine]


@dataclass(frozen=True)
class Backend:
    load: Loader
    available: Callable[[], bool]


#: Manifest engine format -> its loader and whether this machine can run it.
BACKENDS: Registry[str, Backend] = Registry("engine format", error=RepositoryError)


def register_backend(fmt: str, available: Callable[[], bool]) -> Callable[[Loader], Loader]:
    """Register a loader for manifest engine ``format`` ``fmt``."""

    def deco(loader: Loader) -> Loader:
        BACKENDS.add(fmt, Backend(loader, available))
        return loader

    return deco


def backend_available(fmt: str) -> bool:
    return fmt in BACKENDS and BACKENDS[fmt].available()


def load_engine(fmt: str, name: str, path: Path, options: EngineOptions) -> Engine:
    loader = BACKENDS[fmt].load
    return loader(name, path, options)


# ---- ONNX Runtime ---------------------------------------------------------------------


def _ort_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def ort_providers() -> list[str]:
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    return [p for p in ORT_PROVIDER_ORDER if p in have]


def ort_session_options(options: EngineOptions) -> Any:
    """Session options the server and the bench floor share (same threads, same graph opts)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = options.inter_op_threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return so


class OrtEngine:
    """One ONNX Runtime InferenceSession."""

    def __init__(self, name: str, path: Path, options: EngineOptions) -> None:
        import onnxruntime as ort

        self.name = name
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=ort_session_options(options), providers=ort_providers())
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise RepositoryError(f"engine {name!r}: ONNX Runtime cannot load {path.name}: "
                                  f"{exc}") from exc
        self.provider = self._session.get_providers()[0]
        self.input_names = tuple(i.name for i in self._session.get_inputs())
        self.output_names = tuple(o.name for o in self._session.get_outputs())
        self._run_options = ort.RunOptions()

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # ORT releases the GIL inside run(): batches of different engines overlap.
        outs = self._session.run(list(self.output_names), dict(inputs), self._run_options)
        return dict(zip(self.output_names, outs, strict=True))


@register_backend("onnx", _ort_available)
def _load_onnx(name: str, path: Path, options: EngineOptions) -> Engine:
    return OrtEngine(name, path, options)


# ---- TensorRT native plans -------------------------------------------------------------


def _trt_available() -> bool:
    # tensorrt and cuda-python import and a CUDA device is visible; otherwise the
    # repository's ONNX entries are chosen (which still use the TensorRT EP where present).
    from rigserve.server.trt_engine import unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        logger.debug("native TensorRT plans are not used: %s", reason)
    return reason is None


@register_backend("tensorrt", _trt_available)
def _load_tensorrt(name: str, path: Path, options: EngineOptions) -> Engine:
    from rigserve.server.trt_engine import TrtEngine

    engine: Engine = TrtEngine(name, path, options)
    return engine
