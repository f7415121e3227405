"""Tiny, real model repositories for server tests, built without torch in well under a second.

Every non-empty subset of the chosen modalities gets an ONNX engine (``onnx.helper``):
each input is flattened and mapped to an 8-wide feature by its own matrix, the features
are summed, and two linear heads give ``joints`` (B, 17, 3) and ``action_logits`` (B, 27).
Weights are seeded per modality, so the same frame gives the same feature whichever
subset it is in, and different subsets give different answers (routing is visible).
The manifest is written through `rigserve.export.manifest`, so it is the real format.

Used by tests/server, tests/grpc and tests/deploy:
``from tests.server.repo_factory import build_tiny_repo, sample_raw_frames, sample_files``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from rigserve.export.manifest import (
    EngineEntry,
    Manifest,
    ModalityEntry,
    OutputEntry,
    RawEntry,
    sha256_file,
    write_manifest,
)
from rigserve.sensors.formats import encode_frame
from rigserve.sensors.preprocess import PreprocessSpec, model_input_shape
from rigserve.sensors.specs import (
    ACTION_NAMES,
    JOINT_NAMES,
    MODALITIES,
    SENSOR_MODALITIES,
    all_subsets,
    subset_name,
)

HIDDEN = 8
_SEEDS = {m: i + 1 for i, m in enumerate(SENSOR_MODALITIES)}
_RAW_FORMAT = {".png": "png", ".bin": "bin", ".mat": "mat", ".npy": "npy"}


def _weights(modality: str, in_dim: int, hidden: int) -> np.ndarray:
    rng = np.random.default_rng(_SEEDS[modality])
    # (D, hidden), scaled so features stay O(1) for inputs in [0, 1]-ish ranges.
    return (rng.standard_normal((in_dim, hidden)) / np.sqrt(in_dim)).astype(np.float32)


def _heads(hidden: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    scale = np.sqrt(HIDDEN / hidden)  # the same output scale at any width
    w_joints = (rng.standard_normal((hidden, 17 * 3)) * 0.1 * scale).astype(np.float32)
    w_logits = (rng.standard_normal((hidden, 27)) * scale).astype(np.float32)
    return w_joints, w_logits


def build_subset_model(subset: Sequence[str], spec: PreprocessSpec,
                       hidden: int = HIDDEN) -> onnx.ModelProto:
    """The ONNX graph for one subset: inputs in sorted modality order, batch axis 'B'."""
    nodes, inits, inputs, feats = [], [], [], []
    for m in sorted(subset):
        shape = model_input_shape(m, spec)
        dim = int(np.prod(shape))
        inputs.append(helper.make_tensor_value_info(m, TensorProto.FLOAT, ["B", *shape]))
        inits.append(numpy_helper.from_array(_weights(m, dim, hidden), f"W_{m}"))
        nodes += [helper.make_node("Flatten", [m], [f"{m}_flat"], axis=1),  # (B, D)
                  helper.make_node("MatMul", [f"{m}_flat", f"W_{m}"], [f"{m}_feat"])]  # (B, h)
        feats.append(f"{m}_feat")
    nodes.append(helper.make_node("Sum", feats, ["feat"]))
    w_joints, w_logits = _heads(hidden)
    inits += [numpy_helper.from_array(w_joints, "W_joints"),
              numpy_helper.from_array(w_logits, "W_logits"),
              numpy_helper.from_array(np.array([0, 17, 3], np.int64), "joints_shape")]
    nodes += [helper.make_node("MatMul", ["feat", "W_joints"], ["joints_flat"]),  # (B, 51)
              helper.make_node("Reshape", ["joints_flat", "joints_shape"], ["joints"]),  # (B,17,3)
              helper.make_node("MatMul", ["feat", "W_logits"], ["action_logits"])]  # (B, 27)
    outputs = [helper.make_tensor_value_info("joints", TensorProto.FLOAT, ["B", 17, 3]),
               helper.make_tensor_value_info("action_logits", TensorProto.FLOAT, ["B", 27])]
    graph = helper.make_graph(nodes, f"tiny_{subset_name(tuple(subset))}", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="rigserve-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _modality_entry(m: str, spec: PreprocessSpec) -> ModalityEntry:
    s = MODALITIES[m]
    raw = RawEntry(shape=tuple(s.shape), dtype=s.dtype, unit=s.unit, format=_RAW_FORMAT[s.ext])
    return ModalityEntry(name=m, input=m, shape=(-1, *model_input_shape(m, spec)),
                         dtype="float32", unit="m" if m != "wifi" else "normalized", raw=raw)


def build_tiny_repo(root: Path, modalities: Sequence[str] = SENSOR_MODALITIES, *,
                    spec: PreprocessSpec | None = None, max_batch: int = 32,
                    model: str = "rig", hidden: int = HIDDEN) -> Path:
    """Write a complete repository (engines + manifest.json) under ``root``; return it.

    ``hidden`` is the feature width: the default keeps every engine run in microseconds;
    a few thousand makes a run of a full batch take tens of milliseconds, for tests that
    need an engine slower than the requests arrive."""
    spec = spec or PreprocessSpec()
    root = Path(root)
    (root / "engines").mkdir(parents=True, exist_ok=True)
    engines = []
    for subset in all_subsets(tuple(modalities)):
        name = subset_name(subset)
        rel = f"engines/{name}.fp32.onnx"
        onnx.save(build_subset_model(subset, spec, hidden), str(root / rel))
        engines.append(EngineEntry(
            name=f"{model}.{name}", subset=tuple(subset), inputs=tuple(subset), path=rel,
            format="onnx", precision="fp32", sha256=sha256_file(root / rel), max_batch=max_batch,
            metrics={"mpjpe_mm": 100.0 - 10 * len(subset)},
            weights={m: 1.0 / len(subset) for m in subset}))
    manifest = Manifest(
        model=model, created="2026-01-01T00:00:00Z", rigserve_version="0.1.0",
        code_version="tests", preprocessing=spec.to_dict(),
        modalities={m: _modality_entry(m, spec) for m in sorted(modalities)},
        outputs={"joints": OutputEntry("joints", (-1, 17, 3), "float32", "m",
                                       names=JOINT_NAMES),
                 "action_logits": OutputEntry("action_logits", (-1, 27), "float32",
                                              labels=ACTION_NAMES)},
        engines=tuple(engines), training={"strategy": "tiny", "config": {}})
    write_manifest(root, manifest)
    return root


def sample_raw_frames(seed: int = 0, lidar_points: int = 300,
                      mmwave_points: int = 40) -> dict[str, np.ndarray]:
    """One plausible raw frame per sensor modality, as the MM-Fi readers return them."""
    rng = np.random.default_rng(seed)
    depth = rng.integers(500, 5000, size=(480, 640)).astype(np.uint16)
    depth[:40] = 0  # some pixels without a return, as real depth has
    lidar = rng.normal([0.0, 0.0, 3.0], 0.4, size=(lidar_points, 3))
    mmwave = np.concatenate([rng.normal([0.0, 0.0, 3.0], 0.3, size=(mmwave_points, 3)),
                             rng.normal(0, 1, size=(mmwave_points, 1)),
                             rng.uniform(0, 50, size=(mmwave_points, 1))], axis=1)
    wifi = rng.uniform(5, 40, size=(3, 114, 10))
    return {"depth": depth, "lidar": lidar, "mmwave": mmwave, "wifi": wifi}


def sample_files(seed: int = 0) -> dict[str, bytes]:
    """The same frames as MM-Fi file bytes (PNG, float64 .bin, .mat) an edge rig uploads."""
    return {m: encode_frame(m, a) for m, a in sample_raw_frames(seed).items()}
