"""Run an engine file on held-out frames: the runners parity and the benchmark share.

A runner maps ``{input name: (B, ...) float32}`` to ``{output name: array}``; the ONNX
Runtime runner is here, the TensorRT one in ``rigserve.export.tensorrt``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

Feeds = Mapping[str, np.ndarray]
Runner = Callable[[Feeds], dict[str, np.ndarray]]


class OrtRunner:
    """One ONNX Runtime session; ``providers`` in preference order (CPU by default)."""

    def __init__(self, path: Path, *, providers: Sequence[str | tuple[str, dict[str, str]]] = (
                     "CPUExecutionProvider",), intra_op_threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, feeds: Feeds) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise KeyError(f"{self.path.name}: missing inputs {missing}; engine takes "
                           f"{self.input_names}")
        arrays = {n: np.ascontiguousarray(feeds[n], dtype=np.float32) for n in self.input_names}
        outs = self.session.run(self.output_names, arrays)
        return {n: np.asarray(o) for n, o in zip(self.output_names, outs, strict=True)}


def run_in_batches(runner: Runner, feeds: Feeds, batch: int) -> dict[str, np.ndarray]:
    """Run ``feeds`` (all with the same leading axis N) through ``runner`` ``batch`` at a time."""
    total = len(next(iter(feeds.values())))
    chunks: dict[str, list[np.ndarray]] = {}
    for start in range(0, total, batch):
        part = runner({k: v[start:start + batch] for k, v in feeds.items()})
        for name, value in part.items():
            chunks.setdefault(name, []).append(value)
    return {name: np.concatenate(parts, axis=0) for name, parts in chunks.items()}
