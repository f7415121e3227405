"""What rigserve's KServe gRPC service does not do, refused in words that say so.

Triton features rigserve lacks must fail with a status that names what was asked and
what to do instead; ignoring them would answer something other than was asked.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
from tritonclient.utils import InferenceServerException

from tests.grpc.grpc_server import LiveGrpc


def _lidar() -> tgrpc.InferInput:
    inp = tgrpc.InferInput("lidar", [1, 256, 4], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 256, 4), np.float32))
    return inp


@pytest.fixture(scope="module")
def client(grpc_live: LiveGrpc) -> tgrpc.InferenceServerClient:
    return tgrpc.InferenceServerClient(grpc_live.target)


def _refused(client: tgrpc.InferenceServerClient, **infer: object) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        client.infer("rig", **{"inputs": [_lidar()], **infer})
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT", info.value.message()
    return info.value


def test_class_count_is_refused_not_answered_with_the_full_tensor(
        client: tgrpc.InferenceServerClient) -> None:
    # Triton would answer BYTES "value:index:label" top-k strings; full FP32 logits in
    # their place would be misread.
    error = _refused(client, outputs=[tgrpc.InferRequestedOutput("action_logits",
                                                                 class_count=3)])
    assert error.message() == ("output 'action_logits': parameter 'classification': the "
                               "classification extension is not supported; ask for "
                               "'action_logits' and take the argmax")


def test_shared_memory_outputs_and_inputs_are_refused(
        client: tgrpc.InferenceServerClient) -> None:
    out = tgrpc.InferRequestedOutput("joints")
    out.set_shared_memory("region0", 17 * 3 * 4)
    error = _refused(client, outputs=[out])
    assert "output 'joints': parameter 'shared_memory_region'" in error.message()
    assert "send the data in raw_input_contents" in error.message()
    inp = tgrpc.InferInput("lidar", [1, 256, 4], "FP32")
    inp.set_shared_memory("region0", 256 * 4 * 4)
    error = _refused(client, inputs=[inp])
    assert "input 'lidar': parameter 'shared_memory_region'" in error.message()


SHARED_MEMORY = "shared memory is not supported: send tensors in raw_input_contents"


@pytest.mark.parametrize(("call", "message"), [
    (lambda c: c.get_system_shared_memory_status(), f"system {SHARED_MEMORY}"),
    (lambda c: c.register_system_shared_memory("r", "/r", 64), f"system {SHARED_MEMORY}"),
    (lambda c: c.unregister_system_shared_memory(), f"system {SHARED_MEMORY}"),
    (lambda c: c.get_cuda_shared_memory_status(), f"CUDA {SHARED_MEMORY}"),
    (lambda c: c.register_cuda_shared_memory("r", b"\0" * 64, 0, 64), f"CUDA {SHARED_MEMORY}"),
    (lambda c: c.unregister_cuda_shared_memory(), f"CUDA {SHARED_MEMORY}"),
    (lambda c: c.get_trace_settings(), "trace settings are not supported: rigserve exports "
                                       "Prometheus metrics at /metrics and Triton statistics"),
    (lambda c: c.update_trace_settings(settings={"trace_rate": "1"}), "trace settings are"),
    (lambda c: c.get_log_settings(), "log settings are not supported: set the log level "
                                     "when the server starts"),
    (lambda c: c.update_log_settings({"log_info": True}), "log settings are not supported"),
    (lambda c: c.unload_model("rig"), "unloading is not supported: the repository is served "
                                      "whole; use RepositoryModelLoad to reload it"),
], ids=["sysshm-status", "sysshm-register", "sysshm-unregister", "cudashm-status",
        "cudashm-register", "cudashm-unregister", "trace-get", "trace-update", "log-get",
        "log-update", "unload"])
def test_unsupported_rpcs_are_unimplemented_and_say_what_to_do_instead(
        client: tgrpc.InferenceServerClient, call: Callable[[tgrpc.InferenceServerClient],
                                                            object], message: str) -> None:
    with pytest.raises(InferenceServerException) as info:
        call(client)
    assert info.value.status() == "StatusCode.UNIMPLEMENTED"
    assert info.value.message().startswith(message)


def test_unloading_an_unknown_model_is_not_found(client: tgrpc.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="unknown model 'nope'") as info:
        client.unload_model("nope")
    assert info.value.status() == "StatusCode.NOT_FOUND"


@pytest.mark.parametrize(("load", "named"), [
    ({"config": '{"max_batch_size": 4}'}, "'config'"),
    ({"config": "{}", "files": {"file:1/model.onnx": b"onnx"}}, "'config', 'file:1/model.onnx'"),
], ids=["config", "files"])
def test_a_load_that_overrides_the_config_or_files_is_refused_not_ignored(
        client: tgrpc.InferenceServerClient, load: dict[str, object], named: str) -> None:
    with pytest.raises(InferenceServerException) as info:
        client.load_model("rig", **load)
    assert info.value.status() == "StatusCode.UNIMPLEMENTED"
    assert info.value.message() == (
        f"loading with parameter {named} is not supported: rigserve serves the repository "
        "as exported; send no parameters to reload it")


def test_a_load_with_any_parameter_is_refused_as_rest_refuses_it(grpc_live: LiveGrpc) -> None:
    import grpc
    from rigserve.proto import grpc_service_pb2 as pb
    from rigserve.proto import grpc_service_pb2_grpc as pb_grpc

    request = pb.RepositoryModelLoadRequest(model_name="rig")
    request.parameters["warmup"].bool_param = True
    with grpc.insecure_channel(grpc_live.target) as channel, \
            pytest.raises(grpc.RpcError) as info:
        pb_grpc.GRPCInferenceServiceStub(channel).RepositoryModelLoad(request)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert info.value.details().startswith("loading with parameter 'warmup' is not supported")


@pytest.mark.parametrize("rpc", ["RepositoryIndex", "RepositoryModelLoad",
                                 "RepositoryModelUnload"])
def test_a_repository_name_is_refused_as_triton_refuses_it(grpc_live: LiveGrpc,
                                                           rpc: str) -> None:
    import grpc
    from rigserve.proto import grpc_service_pb2 as pb
    from rigserve.proto import grpc_service_pb2_grpc as pb_grpc

    request = getattr(pb, f"{rpc}Request")(repository_name="elsewhere")
    if rpc != "RepositoryIndex":
        request.model_name = "rig"
    with grpc.insecure_channel(grpc_live.target) as channel, \
            pytest.raises(grpc.RpcError) as info:
        getattr(pb_grpc.GRPCInferenceServiceStub(channel), rpc)(request)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert info.value.details() == ("'repository_name' specification is not supported: "
                                    "rigserve serves one repository; leave it empty")
