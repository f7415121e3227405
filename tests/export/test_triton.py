"""export.triton writes the Triton config the server would serve for the same engine:
datatypes and platforms come from the server's tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import text_format
from rigserve.export.manifest import SCHEMA_PATH
from rigserve.export.triton import TensorConfig, config_pbtxt, write_triton_model
from rigserve.proto import model_config_pb2
from rigserve.server.tensors import triton_type

MANIFEST_DTYPES = json.loads(SCHEMA_PATH.read_text())["$defs"]["dtype"]["enum"]


def _parse(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


@pytest.mark.parametrize("dtype", MANIFEST_DTYPES)
def test_every_manifest_dtype_gets_the_triton_type_the_server_reports(dtype: str) -> None:
    config = _parse(config_pbtxt("rig.x", "onnx", [TensorConfig("x", dtype, (3,))],
                                 [TensorConfig("y", dtype, ())], max_batch=4))
    expected = model_config_pb2.DataType.Value(triton_type(dtype))
    assert config.input[0].data_type == config.output[0].data_type == expected


@pytest.mark.parametrize(("fmt", "platform", "filename"), [
    ("onnx", "onnxruntime_onnx", "model.onnx"), ("tensorrt", "tensorrt_plan", "model.plan")])
def test_engine_formats_map_to_tritons_platform_and_file_name(
        tmp_path: Path, fmt: str, platform: str, filename: str) -> None:
    engine = tmp_path / "engine.bin"
    engine.write_bytes(b"engine")
    folder = write_triton_model(tmp_path / "triton", "rig.lidar", engine, fmt=fmt,
                                inputs=[TensorConfig("lidar", "float32", (256, 4))],
                                outputs=[TensorConfig("joints", "float32", (17, 3))],
                                max_batch=8)
    config = _parse((folder / "config.pbtxt").read_text())
    assert (config.platform, config.default_model_filename) == (platform, filename)
    assert (folder / "1" / filename).read_bytes() == b"engine"


def test_unknown_format_and_dtype_name_what_is_accepted() -> None:
    x = [TensorConfig("x", "float32", (1,))]
    with pytest.raises(ValueError, match=r"format 'openvino' has no Triton platform; "
                                         r"accepted: onnx, tensorrt"):
        config_pbtxt("m", "openvino", x, x, max_batch=1)
    with pytest.raises(ValueError, match=r"c: dtype 'complex64' has no Triton type; "
                                         r"accepted: bool, uint8"):
        config_pbtxt("m", "onnx", [TensorConfig("c", "complex64", (1,))], x, max_batch=1)
