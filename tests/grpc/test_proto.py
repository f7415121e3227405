"""The committed stubs match the .proto files, and Triton's contract matches tritonclient's."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from google.protobuf import text_format
from rigserve.proto import build, grpc_service_pb2, model_config_pb2


def test_generated_stubs_are_up_to_date_with_the_proto_files(tmp_path: Path) -> None:
    written = build.generate(out_dir=tmp_path)
    assert sorted(p.name for p in written) == sorted(build.generated_files())
    stale = [p.name for p in written
             if p.read_bytes() != (build.PROTO_DIR / p.name).read_bytes()]
    assert not stale, f"regenerate with `python -m rigserve.proto.build`: {stale} differ"


def test_generated_stubs_import_inside_the_package(tmp_path: Path) -> None:
    for path in build.generate(out_dir=tmp_path):
        text = path.read_text()
        assert "\nimport model_config_pb2" not in text
        assert "\nimport grpc_service_pb2" not in text
    generated = (tmp_path / "grpc_service_pb2.py").read_text()
    assert "from rigserve.proto import model_config_pb2" in generated


@pytest.mark.parametrize(("ours", "theirs"), [
    ("model_config_pb2", "model_config_pb2"),
    ("grpc_service_pb2", "service_pb2"),
])
def test_triton_descriptors_are_byte_identical_to_tritonclient(ours: str, theirs: str) -> None:
    # tritonclient loads its own compiled copy into the same descriptor pool.
    mine = importlib.import_module(f"rigserve.proto.{ours}")
    reference = importlib.import_module(f"tritonclient.grpc.{theirs}")
    assert mine.DESCRIPTOR.serialized_pb == reference.DESCRIPTOR.serialized_pb


def test_model_infer_request_field_numbers_follow_the_published_spec() -> None:
    fields = grpc_service_pb2.ModelInferRequest.DESCRIPTOR.fields_by_name
    assert {n: f.number for n, f in fields.items()} == {
        "model_name": 1, "model_version": 2, "id": 3, "parameters": 4, "inputs": 5,
        "outputs": 6, "raw_input_contents": 7}
    response = grpc_service_pb2.ModelStreamInferResponse.DESCRIPTOR.fields_by_name
    assert response["error_message"].number == 1
    assert response["infer_response"].number == 2


def test_config_pbtxt_parses_into_model_config() -> None:
    pbtxt = """
    name: "rig.depth+lidar"
    platform: "onnxruntime_onnx"
    max_batch_size: 32
    input [ { name: "depth" data_type: TYPE_FP32 dims: [ 1, 48, 64 ] },
            { name: "lidar" data_type: TYPE_FP32 dims: [ 256, 4 ] } ]
    output [ { name: "joints" data_type: TYPE_FP32 dims: [ 17, 3 ] } ]
    dynamic_batching { max_queue_delay_microseconds: 500 }
    instance_group [ { kind: KIND_CPU count: 1 } ]
    """
    config = text_format.Parse(pbtxt, model_config_pb2.ModelConfig())
    assert config.max_batch_size == 32
    assert [i.name for i in config.input] == ["depth", "lidar"]
    assert list(config.input[1].dims) == [256, 4]
    assert config.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    with pytest.raises(text_format.ParseError, match="no_such_field"):
        text_format.Parse('name: "x" no_such_field: 3', model_config_pb2.ModelConfig())
