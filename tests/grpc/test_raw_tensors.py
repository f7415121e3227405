"""Raw little-endian tensors: the rig stream and KServe decode through one implementation,
each naming the tensor and its type in its own protocol's words."""

from __future__ import annotations

import numpy as np
import pytest
from rigserve.proto import rig_stream_pb2 as rig_pb
from rigserve.server.errors import InvalidInput
from rigserve.server.grpc.rig_stream import tensor_to_array
from rigserve.server.grpc.tensors import decode_raw


def test_rig_tensor_and_kserve_raw_input_decode_the_same_bytes_to_the_same_array() -> None:
    values = np.arange(12, dtype=np.float32).reshape(4, 3) - 5.5
    data = values.astype("<f4").tobytes()
    rig = tensor_to_array("lidar", rig_pb.Tensor(dtype="float32", shape=[4, 3], data=data))
    kserve = decode_raw("lidar", "FP32", [4, 3], data)
    for array in (rig, kserve):
        np.testing.assert_array_equal(array, values)
        assert array.dtype == np.dtype(np.float32)  # native order for the engines
        assert array.flags.writeable
        assert array.flags.owndata


def test_rig_tensor_reads_big_values_little_endian() -> None:
    data = np.array([1, 256, 65535], dtype="<u2").tobytes()
    array = tensor_to_array("depth", rig_pb.Tensor(dtype="uint16", shape=[3], data=data))
    assert array.tolist() == [1, 256, 65535]


def test_short_bytes_are_named_in_each_protocols_words() -> None:
    with pytest.raises(InvalidInput,
                       match=r"^depth: uint16 tensor of shape \[2, 2\] needs 8 bytes, got 6$"):
        tensor_to_array("depth", rig_pb.Tensor(dtype="uint16", shape=[2, 2], data=b"\0" * 6))
    with pytest.raises(InvalidInput, match=r"^input 'depth': UINT16 tensor of shape \[2, 2\] "
                                           r"needs 8 raw bytes, got 6$"):
        decode_raw("depth", "UINT16", [2, 2], b"\0" * 6)


def test_each_protocol_rejects_the_other_protocols_type_names() -> None:
    with pytest.raises(InvalidInput, match=r"tensor dtype 'FP32' is not accepted; accepted: "
                                           r"float16, float32"):
        tensor_to_array("wifi", rig_pb.Tensor(dtype="FP32", shape=[1], data=b"\0" * 4))
    with pytest.raises(InvalidInput, match=r"unknown datatype 'float32'; accepted: BOOL"):
        decode_raw("wifi", "float32", [1], b"\0" * 4)


def test_negative_dimensions_are_refused_before_bytes_are_counted() -> None:
    with pytest.raises(InvalidInput, match=r"^lidar: shape \[-1, 3\] has a negative dimension"):
        tensor_to_array("lidar", rig_pb.Tensor(dtype="float32", shape=[-1, 3], data=b""))
    with pytest.raises(InvalidInput,
                       match=r"^input 'lidar': shape \[-1, 3\] has a negative dimension"):
        decode_raw("lidar", "FP32", [-1, 3], b"")


def test_a_shape_whose_element_count_overflows_int64_is_refused_not_wrapped() -> None:
    # 2**32 * 2**32 elements wrap to 0 in int64, which would "match" an empty payload.
    with pytest.raises(InvalidInput, match=r"^input 'x': shape \[4294967296, 4294967296\] is "
                                           r"too large: its non-zero dimensions multiply to "
                                           r"18446744073709551616 elements"):
        decode_raw("x", "UINT8", [2**32, 2**32], b"")


def test_an_empty_shape_numpy_cannot_build_is_refused_by_every_decoder() -> None:
    from rigserve.proto import grpc_service_pb2 as pb
    from rigserve.server.grpc.tensors import decode_contents

    # Zero elements, so no byte count can be wrong; numpy still cannot reshape to it.
    shape = [2**62, 2**62, 0]
    too_large = r"shape \[4611686018427387904, 4611686018427387904, 0\] is too large"
    with pytest.raises(InvalidInput, match=rf"^lidar: {too_large}"):
        tensor_to_array("lidar", rig_pb.Tensor(dtype="float32", shape=shape, data=b""))
    for datatype in ("FP32", "BYTES"):
        with pytest.raises(InvalidInput, match=rf"^input 'lidar': {too_large}"):
            decode_raw("lidar", datatype, shape, b"")
        with pytest.raises(InvalidInput, match=rf"^input 'lidar': {too_large}"):
            decode_contents("lidar", datatype, shape, pb.InferTensorContents())


def test_a_bytes_shape_longer_than_its_data_is_refused_before_allocating() -> None:
    # 2**40 object slots would be 8 TiB: the count is checked against the data first.
    with pytest.raises(InvalidInput, match=r"^input 'x': BYTES data of 9 bytes holds at most "
                                           r"2 elements \(each has a 4-byte length\); the "
                                           r"shape needs 1099511627776$"):
        decode_raw("x", "BYTES", [2**40], b"\1\0\0\0a\0\0\0\0")
    assert decode_raw("x", "BYTES", [2], b"\1\0\0\0a\0\0\0\0").tolist() == [b"a", b""]


def test_kserve_datatype_names_any_byte_order_and_refuses_what_it_has_no_name_for() -> None:
    from rigserve.server.tensors import kserve_dtype

    for spelled in (np.float32, "float32", "<f4", ">f4", np.dtype("=f4")):
        assert kserve_dtype(spelled) == "FP32"
    assert kserve_dtype(">u2") == "UINT16"
    assert kserve_dtype(np.dtype(object)) == "BYTES"
    with pytest.raises(InvalidInput, match=r"numpy dtype complex64 has no KServe v2 datatype"):
        kserve_dtype(np.complex64)
