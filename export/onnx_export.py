"""PyTorch subset model -> checked ONNX graph with a dynamic batch axis -> ORT-optimised file.

Two exporters are registered. ``torchscript`` (``torch.onnx.export(dynamo=False)``) is the
default: it traces a subset model in ~0.3 s where the ``dynamo`` exporter (torch.export +
onnxscript) takes 2-5 s, which decides whether all 15 subsets export inside the 60 s
budget on two cores. Tracing can bake a batch size into the graph, so the batch axis is
not trusted: every engine's parity is checked at a batch size different from the traced
one (see ``rigserve.export.parity``), and the output shapes the tracer leaves symbolic
(``joints`` comes out of a reshape) are pinned to the manifest's. ``dynamo`` proves the
batch axis symbolic at export time instead and is kept for models tracing cannot handle.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import onnx
import onnxruntime as ort
import torch
from torch import nn

from rigserve.registry import Registry

logger = logging.getLogger(__name__)

BATCH_AXIS = "batch"
MIN_OPSET = 17

#: ``fn(module, example_inputs, path, input_names=, output_names=, opset=)`` writes ``path``.
Exporter = Callable[..., None]

#: ORT graph-optimisation levels a saved engine may be written at (see ``optimize_with_ort``).
OPTIMIZATION_LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
}


class OnnxExportError(RuntimeError):
    """The ONNX graph could not be produced or fails ``onnx.checker``."""


EXPORTERS: Registry[str, Exporter] = Registry("ONNX exporter", error=OnnxExportError)


@EXPORTERS.register("torchscript")
def _export_torchscript(module: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, *,
                        input_names: Sequence[str], output_names: Sequence[str],
                        opset: int) -> None:
    axes = {name: {0: BATCH_AXIS} for name in (*input_names, *output_names)}
    with warnings.catch_warnings():
        # The tracer warns about every Python-int shape it records; parity at another
        # batch size is the real check (module docstring).
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(path), input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=axes,
                          opset_version=opset, do_constant_folding=True, dynamo=False)


@EXPORTERS.register("dynamo")
def _export_dynamo(module: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, *,
                   input_names: Sequence[str], output_names: Sequence[str],
                   opset: int) -> None:
    batch = torch.export.Dim(BATCH_AXIS, min=1, max=65536)
    # forward(*inputs): the varargs parameter takes one tuple of per-input specs.
    shapes = (tuple({0: batch} for _ in inputs),)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, inputs, None, input_names=list(input_names),
                                    output_names=list(output_names), dynamic_shapes=shapes,
                                    opset_version=opset, dynamo=True, verbose=False)
    if program is None:
        raise OnnxExportError("the dynamo exporter returned no program")
    program.save(str(path), external_data=False)


def export_onnx(module: nn.Module, example_inputs: tuple[torch.Tensor, ...],
                input_names: Sequence[str], output_shapes: Mapping[str, Sequence[int]],
                path: Path, *, exporter: str = "torchscript", opset: int = 18) -> onnx.ModelProto:
    """Export ``module`` to ``path``, pin the output shapes, run ``onnx.checker``.

    ``output_shapes`` maps each output name (in the module's output order) to its shape
    with -1 for the batch axis; the graph's outputs must match them exactly.
    """
    if opset < MIN_OPSET:
        raise OnnxExportError(f"opset {opset} is too old: rigserve engines need opset >= "
                              f"{MIN_OPSET}")
    fn = EXPORTERS[exporter]
    names = list(output_shapes)
    module.eval()
    with torch.no_grad():
        fn(module, example_inputs, path, input_names=input_names, output_names=names,
           opset=opset)
    model = onnx.load(str(path))
    _pin_io_shapes(model, input_names, example_inputs, output_shapes)
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise OnnxExportError(f"{path.name}: onnx.checker rejected the graph: {exc}") from exc
    onnx.save(model, str(path))
    return model


def _pin_io_shapes(model: onnx.ModelProto, input_names: Sequence[str],
                   inputs: tuple[torch.Tensor, ...],
                   output_shapes: Mapping[str, Sequence[int]]) -> None:
    """Name every batch axis ``batch`` and fix every other axis to its known size."""
    graph_inputs = [i.name for i in model.graph.input]
    if graph_inputs != list(input_names):
        raise OnnxExportError(f"graph inputs {graph_inputs} differ from the subset's inputs "
                              f"{list(input_names)}")
    graph_outputs = [o.name for o in model.graph.output]
    if graph_outputs != list(output_shapes):
        raise OnnxExportError(f"graph outputs {graph_outputs} differ from the expected outputs "
                              f"{list(output_shapes)}")
    wanted = {name: (-1, *x.shape[1:]) for name, x in zip(input_names, inputs, strict=True)}
    wanted.update({k: tuple(v) for k, v in output_shapes.items()})
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        shape = wanted[value.name]
        if len(dims) != len(shape):
            raise OnnxExportError(f"{value.name}: graph rank {len(dims)} differs from the "
                                  f"expected shape {list(shape)}")
        for dim, size in zip(dims, shape, strict=True):
            if size == -1:
                dim.dim_param = BATCH_AXIS
            else:
                dim.dim_value = int(size)


def optimize_with_ort(src: Path, dst: Path, *, level: str = "extended",
                      intra_op_threads: int = 1) -> Path:
    """Write ORT's optimised graph of ``src`` to ``dst`` (offline optimisation).

    ``extended`` adds ORT's CPU/CUDA fusions (contrib ops such as FusedConv), so the
    result is for ORT only; ``basic`` keeps standard ONNX ops (TensorRT, other runtimes).
    Hardware-specific layout passes (level ``all``) are never baked into a file.
    """
    try:
        opt_level = OPTIMIZATION_LEVELS[level]
    except KeyError:
        raise OnnxExportError(f"unknown optimisation level {level!r}; accepted: "
                              f"{', '.join(OPTIMIZATION_LEVELS)}") from None
    options = ort.SessionOptions()
    options.graph_optimization_level = opt_level
    options.optimized_model_filepath = str(dst)
    options.intra_op_num_threads = intra_op_threads
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    if not dst.is_file():
        raise OnnxExportError(f"ONNX Runtime did not write the optimised graph {dst}")
    return dst
