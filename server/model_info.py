"""The models a repository exposes and their KServe v2 metadata / Triton configuration.

The logical model (the manifest's ``model``, ``rig``) accepts any non-empty subset of
the modality inputs and routes by which are present; every subset engine is also a
model of its own (``rig.depth+lidar``) with exactly its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rigserve.sensors.specs import subset_name
from rigserve.server.errors import InvalidInput, ModelNotFound, some_names
from rigserve.server.tensors import kserve_dtype, triton_type

if TYPE_CHECKING:
    from rigserve.server.repository import Repository
    from rigserve.server.settings import Settings

VERSION = "1"


@dataclass(frozen=True)
class TritonPlatform:
    """How Triton runs one engine format (model_config.proto names)."""

    platform: str
    backend: str
    #: ``default_model_filename`` in the model's version folder.
    filename: str


#: Engine format (the manifest's ``format``) -> Triton platform; also what `export.triton`
#: writes into ``config.pbtxt``, so rigserve's model config and Triton's agree.
TRITON_PLATFORMS: dict[str, TritonPlatform] = {
    "onnx": TritonPlatform("onnxruntime_onnx", "onnxruntime", "model.onnx"),
    "tensorrt": TritonPlatform("tensorrt_plan", "tensorrt", "model.plan"),
}
#: The logical model's platform: it routes to the subset engines, Triton has no such thing.
ROUTER_PLATFORM = "rigserve_router"
#: Engine providers that run on the GPU (Triton instance_group kind KIND_GPU).
_GPU_PROVIDERS = frozenset({"TensorRT", "TensorrtExecutionProvider", "CUDAExecutionProvider"})


class ModelCatalog:
    """Names, routing by input names, metadata and config for one loaded repository."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.logical = repo.manifest.model
        self.by_name = {le.name: subset for subset, le in repo.engines.items()}
        self.names = frozenset({self.logical, *self.by_name})
        # input tensor name -> modality
        self._modality_of = {e.input: m for m, e in repo.manifest.modalities.items()}

    def check(self, model: str) -> None:
        if model not in self.names:
            raise ModelNotFound(f"unknown model {model!r}; available: "
                                f"{', '.join(sorted(self.names))}")

    def resolve(self, model: str, inputs: Mapping[str, object]) -> str:
        """The subset that serves this request to ``model``."""
        self.check(model)
        if model != self.logical:
            return self.by_name[model]
        unknown = sorted(set(inputs) - set(self._modality_of))
        if unknown:
            raise InvalidInput(f"unknown input {some_names(unknown)} for model "
                               f"{model}; inputs are {', '.join(sorted(self._modality_of))}")
        if not inputs:
            raise InvalidInput(f"model {model} needs at least one input of "
                               f"{', '.join(sorted(self._modality_of))}")
        subset = subset_name([self._modality_of[n] for n in inputs])
        if subset not in self.repo.engines:
            raise InvalidInput(f"model {model}: no engine for the input combination "
                               f"{subset!r}; available subsets: "
                               f"{', '.join(sorted(self.repo.engines))}")
        return subset

    def _input_names(self, model: str) -> list[str]:
        if model == self.logical:
            return sorted(self._modality_of)
        le = self.repo.engines[self.by_name[model]]
        return sorted(le.input_shapes)

    def _max_batch(self, model: str) -> int:
        if model == self.logical:
            return min(le.entry.max_batch for le in self.repo.engines.values())
        return self.repo.engines[self.by_name[model]].entry.max_batch

    def _inputs(self, model: str) -> list[tuple[str, str, list[int]]]:
        m = self.repo.manifest
        out = []
        for name in self._input_names(model):
            spec = m.modalities[self._modality_of[name]]
            out.append((name, spec.dtype, list(spec.shape[1:])))
        return out

    def _outputs(self) -> list[tuple[str, str, list[int]]]:
        return [(n, o.dtype, list(o.shape[1:])) for n, o in self.repo.manifest.outputs.items()]

    def metadata(self, model: str) -> dict[str, Any]:
        """KServe v2 model metadata; shapes carry -1 for the batch axis."""
        self.check(model)

        def tensor(name: str, dtype: str, dims: list[int]) -> dict[str, Any]:
            return {"name": name, "datatype": kserve_dtype(dtype), "shape": [-1, *dims]}

        return {
            "name": model, "versions": [VERSION], "platform": self._platform(model),
            "inputs": [tensor(*t) for t in self._inputs(model)],
            "outputs": [tensor(*t) for t in self._outputs()],
        }

    def _triton(self, model: str) -> TritonPlatform:
        return TRITON_PLATFORMS[self.repo.engines[self.by_name[model]].entry.format]

    def _platform(self, model: str) -> str:
        return ROUTER_PLATFORM if model == self.logical else self._triton(model).platform

    def _instance_kind(self, model: str) -> str:
        """KIND_GPU when the model's engine(s) run on the GPU (native plan, CUDA/TRT EP)."""
        subsets = (self.repo.engines if model == self.logical
                   else [self.by_name[model]])
        on_gpu = any(self.repo.engines[s].engine.provider in _GPU_PROVIDERS for s in subsets)
        return "KIND_GPU" if on_gpu else "KIND_CPU"

    def config(self, model: str, settings: Settings) -> dict[str, Any]:
        """Triton's model configuration as JSON (what perf_analyzer reads)."""
        self.check(model)
        logical = model == self.logical

        def tensor(name: str, dtype: str, dims: list[int]) -> dict[str, Any]:
            t: dict[str, Any] = {"name": name, "data_type": triton_type(dtype), "dims": dims}
            if logical:
                t["optional"] = True  # `rig` routes on whichever inputs arrive
            return t

        return {
            "name": model,
            "platform": self._platform(model),
            "backend": "" if logical else self._triton(model).backend,
            "version_policy": {"latest": {"num_versions": 1}},
            "max_batch_size": self._max_batch(model),
            "input": [tensor(*t) for t in self._inputs(model)],
            "output": [{"name": n, "data_type": triton_type(d), "dims": dims}
                       for n, d, dims in self._outputs()],
            "dynamic_batching": {
                "preferred_batch_size": [settings.max_batch_size],
                "max_queue_delay_microseconds": int(settings.max_queue_delay_ms * 1000),
                "default_queue_policy": {"max_queue_size": settings.max_queue_size},
            },
            "instance_group": [{"name": model, "kind": self._instance_kind(model),
                                "count": settings.engine_instances}],
        }
