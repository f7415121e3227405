"""A Triton-layout model repository beside rigserve's own: ``REPO/triton/rig.<subset>/``.

Each subset becomes one Triton model (``config.pbtxt`` + ``1/model.onnx`` or
``1/model.plan``) with dynamic batching, so Triton Inference Server or KServe's Triton
runtime can serve the same engines when one rigserve replica is not enough. Triton's
``max_batch_size`` convention: dims exclude the batch axis (model_config.proto).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The server's tables, so this config.pbtxt and the config rigserve serves agree; the
# import runs this way because the server never imports export (torch lives here).
from rigserve.server.model_info import TRITON_PLATFORMS, TritonPlatform
from rigserve.server.tensors import NUMPY_TO_TRITON


@dataclass(frozen=True)
class TensorConfig:
    """A model input or output: name, numpy dtype and shape *without* the batch axis."""

    name: str
    dtype: str
    dims: tuple[int, ...]


def _tensor_block(tensors: Sequence[TensorConfig]) -> str:
    items = []
    for t in tensors:
        try:
            dtype = NUMPY_TO_TRITON[t.dtype]
        except KeyError:
            raise ValueError(f"{t.name}: dtype {t.dtype!r} has no Triton type; accepted: "
                             f"{', '.join(NUMPY_TO_TRITON)}") from None
        # A per-sample scalar (B,) is dims [1] reshaped to [] (Triton needs non-empty dims).
        dims = ", ".join(str(d) for d in t.dims) or "1"
        reshape = "" if t.dims else "\n    reshape: { shape: [ ] }"
        items.append(f'  {{\n    name: "{t.name}"\n    data_type: {dtype}\n    dims: [ {dims} ]'
                     f"{reshape}\n  }}")
    return "[\n" + ",\n".join(items) + "\n]"


def _platform(fmt: str) -> TritonPlatform:
    try:
        return TRITON_PLATFORMS[fmt]
    except KeyError:
        raise ValueError(f"engine format {fmt!r} has no Triton platform; accepted: "
                         f"{', '.join(TRITON_PLATFORMS)}") from None


def config_pbtxt(name: str, fmt: str, inputs: Sequence[TensorConfig],
                 outputs: Sequence[TensorConfig], *, max_batch: int,
                 max_queue_delay_us: int = 2000, gpu: bool = False) -> str:
    """Triton ``ModelConfig`` in protobuf text format."""
    triton = _platform(fmt)
    # Preferred sizes: powers of two up to max_batch, the batcher waits at most the delay.
    preferred = [b for b in (4, 8, 16, 32, 64, 128) if b <= max_batch] or [max_batch]
    kind = "KIND_GPU" if gpu or fmt == "tensorrt" else "KIND_CPU"
    return (
        f'name: "{name}"\n'
        f'platform: "{triton.platform}"\n'
        f'default_model_filename: "{triton.filename}"\n'
        f"max_batch_size: {max_batch}\n"
        f"input {_tensor_block(inputs)}\n"
        f"output {_tensor_block(outputs)}\n"
        "dynamic_batching {\n"
        f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]\n"
        f"  max_queue_delay_microseconds: {max_queue_delay_us}\n"
        "}\n"
        f"instance_group [\n  {{\n    count: 1\n    kind: {kind}\n  }}\n]\n"
    )


def write_triton_model(root: Path, name: str, engine_file: Path, *, fmt: str,
                       inputs: Sequence[TensorConfig], outputs: Sequence[TensorConfig],
                       max_batch: int) -> Path:
    """Write ``root/<name>/config.pbtxt`` and ``root/<name>/1/<model file>``."""
    model_dir = root / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(engine_file, model_dir / "1" / _platform(fmt).filename)
    config = config_pbtxt(name, fmt, inputs, outputs, max_batch=max_batch)
    (model_dir / "config.pbtxt").write_text(config)
    return model_dir


def tensors(shapes: Mapping[str, Sequence[int]], dtype: str = "float32") -> list[TensorConfig]:
    """TensorConfigs from ``{name: shape with -1 batch first}``; the batch axis is dropped."""
    return [TensorConfig(n, dtype, tuple(int(d) for d in s[1:])) for n, s in shapes.items()]
