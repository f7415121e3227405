"""export_run end to end on tiny real models: engines, parity, manifest, INT8, Triton."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import onnxruntime as ort
import pytest
import torch
from google.protobuf import text_format
from rigserve.export.exporter import ExportOptions, export_loaded
from rigserve.export.frames import synthetic_frames
from rigserve.export.manifest import (
    Manifest,
    ManifestError,
    load_manifest,
    manifest_schema,
    verify_engine_file,
)
from rigserve.sensors.specs import all_subsets

from tests.export.conftest import tiny_run

MODALITIES = ("depth", "lidar", "wifi")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    repo = tmp_path_factory.mktemp("export") / "repo"
    manifest = export_loaded(tiny_run(MODALITIES), repo, ExportOptions(
        precisions=("fp32", "int8"), triton=True, parity_frames=12, calibration_frames=12,
        max_batch=8))
    return repo, manifest


def _torch_outputs(run: object, subset: tuple[str, ...], feeds: dict[str, np.ndarray]
                   ) -> list[np.ndarray]:
    module = run.model.subset_model(subset).eval()  # type: ignore[attr-defined]
    with torch.no_grad():
        outs = module(*(torch.from_numpy(feeds[m]) for m in subset))
    return [o.numpy() for o in outs]


def test_every_subset_engine_matches_pytorch_on_fresh_frames(
        exported: tuple[Path, Manifest]) -> None:
    repo, manifest = exported
    run = tiny_run(MODALITIES)  # same seed: the same weights as the exported model
    frames = synthetic_frames(MODALITIES, run.input_shapes, frames=5, calibration=1, seed=7)
    assert sorted(manifest.subsets()) == sorted("+".join(s) for s in all_subsets(MODALITIES))
    for engine in (e for e in manifest.engines if e.precision == "fp32"):
        session = ort.InferenceSession(str(repo / engine.path),
                                       providers=["CPUExecutionProvider"])
        feeds = frames.feeds(engine.subset)
        got = session.run(["joints", "action_logits"], feeds)
        want = _torch_outputs(run, engine.subset, feeds)
        assert got[0].shape == (5, 17, 3)
        assert got[1].shape == (5, 27)
        assert np.abs(got[0] - want[0]).max() <= 1e-4, engine.subset_name
        assert engine.parity["max_abs_err_joints"] <= 1e-4
        assert engine.parity["frames"] == 12


def test_manifest_validates_and_each_engine_takes_exactly_its_subset(
        exported: tuple[Path, Manifest]) -> None:
    repo, manifest = exported
    raw = json.loads((repo / "manifest.json").read_text())
    jsonschema.validate(raw, manifest_schema())
    assert load_manifest(repo, verify=True) == manifest
    assert len(manifest.engines) == 14  # 7 subsets x (fp32, int8)
    for engine in manifest.engines:
        session = ort.InferenceSession(str(repo / engine.path),
                                       providers=["CPUExecutionProvider"])
        inputs = session.get_inputs()
        assert [i.name for i in inputs] == list(engine.subset) == list(engine.inputs)
        for i in inputs:
            assert i.shape[0] == "batch"
            assert tuple(i.shape[1:]) == manifest.modalities[i.name].shape[1:]
        assert [o.name for o in session.get_outputs()] == ["joints", "action_logits"]
        assert engine.path == f"engines/{engine.subset_name}.{engine.precision}.onnx"
        assert engine.metrics["mpjpe_mm"] == 50.0 + len(engine.subset)  # from the run
        assert sum(engine.weights.values()) == pytest.approx(1.0)
        assert list(engine.weights) == list(engine.subset)
    assert manifest.preprocessing["lidar_points"] == 64
    assert manifest.modalities["depth"].shape == (-1, 1, 24, 32)
    assert manifest.modalities["lidar"].raw is not None
    assert manifest.modalities["lidar"].raw.format == "bin"
    assert manifest.outputs["joints"].names[0] == "pelvis"
    assert len(manifest.outputs["action_logits"].labels) == 27
    assert manifest.training["strategy"] == "pta"
    assert (repo / "run" / "config.yaml").is_file()


def test_purified_weights_differ_per_subset(exported: tuple[Path, Manifest]) -> None:
    _, manifest = exported
    full = manifest.engines_for("depth+lidar+wifi")[0].weights
    pair = manifest.engines_for("depth+wifi")[0].weights
    # theta = linspace(-0.5, 0.5): renormalised softmax over the subset.
    assert full["wifi"] > full["lidar"] > full["depth"]
    assert pair["wifi"] / pair["depth"] == pytest.approx(full["wifi"] / full["depth"])


def test_int8_engines_record_accuracy_delta_per_subset(exported: tuple[Path, Manifest]) -> None:
    _, manifest = exported
    int8 = [e for e in manifest.engines if e.precision == "int8"]
    assert len(int8) == 7
    for engine in int8:
        delta = engine.accuracy_delta
        # Synthetic frames have no ground truth: measured against PyTorch itself.
        assert set(delta) == {"mpjpe_mm_vs_pytorch", "action_top1_vs_pytorch"}
        assert 0.0 < delta["mpjpe_mm_vs_pytorch"] < 200.0
        assert -1.0 <= delta["action_top1_vs_pytorch"] <= 0.0
        # INT8 really is quantised: its error is far above fp32's.
        fp32 = manifest.engines_for(engine.subset)[0]
        assert engine.parity["max_abs_err_joints"] > 10 * fp32.parity["max_abs_err_joints"]


def test_int8_graph_contains_integer_kernels(exported: tuple[Path, Manifest]) -> None:
    import onnx

    repo, manifest = exported
    engine = next(e for e in manifest.engines_for("depth") if e.precision == "int8")
    ops = {n.op_type for n in onnx.load(str(repo / engine.path)).graph.node}
    assert ops & {"QLinearConv", "ConvInteger", "QuantizeLinear", "QLinearMatMul",
                  "MatMulInteger", "DynamicQuantizeLinear"}, ops


def test_triton_config_parses_as_model_config(exported: tuple[Path, Manifest]) -> None:
    from rigserve.proto import model_config_pb2

    repo, manifest = exported
    models = sorted(p.name for p in (repo / "triton").iterdir())
    assert models == sorted(f"rig.{s}" for s in manifest.subsets())
    for subset in manifest.subsets():
        folder = repo / "triton" / f"rig.{subset}"
        config = text_format.Parse((folder / "config.pbtxt").read_text(),
                                   model_config_pb2.ModelConfig())
        assert config.name == f"rig.{subset}"
        assert config.platform == "onnxruntime_onnx"
        assert config.max_batch_size == 8
        assert [i.name for i in config.input] == subset.split("+")
        for tensor in config.input:
            assert tuple(tensor.dims) == manifest.modalities[tensor.name].shape[1:]
            assert tensor.data_type == model_config_pb2.TYPE_FP32
        assert {o.name: tuple(o.dims) for o in config.output} == {
            "joints": (17, 3), "action_logits": (27,)}
        assert config.HasField("dynamic_batching")
        assert max(config.dynamic_batching.preferred_batch_size) <= 8
        session = ort.InferenceSession(str(folder / "1" / "model.onnx"),
                                       providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == subset.split("+")


def test_tampered_exported_engine_is_refused(exported: tuple[Path, Manifest],
                                             tmp_path: Path) -> None:
    import shutil

    repo = tmp_path / "copy"
    shutil.copytree(exported[0], repo)
    entry = load_manifest(repo).engines_for("lidar+wifi")[0]
    data = bytearray((repo / entry.path).read_bytes())
    data[-1] ^= 0xFF
    (repo / entry.path).write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"lidar\+wifi\.fp32\.onnx.*sha256 mismatch"):
        verify_engine_file(repo, entry)


def test_run_trained_on_two_modalities_with_an_extra_head(tmp_path: Path) -> None:
    run = tiny_run(("lidar", "mmwave"), extra_head=True)
    manifest = export_loaded(run, tmp_path / "repo", ExportOptions(parity_frames=6,
                                                                    max_batch=4))
    assert sorted(manifest.subsets()) == ["lidar", "lidar+mmwave", "mmwave"]
    assert set(manifest.modalities) == {"lidar", "mmwave"}
    assert manifest.outputs["uncertainty"].shape == (-1,)
    for engine in manifest.engines:
        assert engine.outputs == ("joints", "action_logits", "uncertainty")
        assert engine.parity["max_abs_err_uncertainty"] <= 1e-4
    load_manifest(tmp_path / "repo", verify=True)


def test_reexport_replaces_an_older_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    options = ExportOptions(parity_frames=4, subsets=("wifi",))
    export_loaded(tiny_run(("wifi",)), repo, options)
    (repo / "engines" / "stale.onnx").write_bytes(b"old")
    manifest = export_loaded(tiny_run(("wifi",), seed=1), repo, options)
    assert not (repo / "engines" / "stale.onnx").exists()
    assert load_manifest(repo, verify=True) == manifest
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]  # no staging left behind
