"""Health, reflection, API keys, TLS and message limits on a real gRPC server."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from rigserve.proto import grpc_service_pb2 as pb
from rigserve.proto import grpc_service_pb2_grpc as pb_grpc
from rigserve.server.grpc import stop_grpc_server
from tritonclient.utils import InferenceServerException

from tests.grpc.grpc_server import LiveGrpc, live_grpc
from tests.grpc.rig_client import LockStep, rig_frame
from tests.server.repo_factory import sample_raw_frames

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _check(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_health_is_not_serving_until_ready_and_again_when_stopping(tiny_repo: Path) -> None:
    with live_grpc(tiny_repo, start_service=False) as live, \
            grpc.insecure_channel(live.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service="rigserve.v1.RigStream"), timeout=20)
        assert _check(channel) == NOT_SERVING
        assert _check(channel, "inference.GRPCInferenceService") == NOT_SERVING
        assert next(watch).status == NOT_SERVING
        live.call(live.service.start())
        assert _check(channel) == SERVING
        assert next(watch).status == SERVING
        live.call(live.service.stop())
        assert _check(channel) == NOT_SERVING
        assert next(watch).status == NOT_SERVING
        watch.cancel()
        with pytest.raises(grpc.RpcError) as info:
            _check(channel, "no.such.Service")
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_shutdown_reports_not_serving_before_in_flight_calls_end(tiny_repo: Path) -> None:
    with live_grpc(tiny_repo) as live, grpc.insecure_channel(live.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(),
                                                          timeout=20)
        assert next(watch).status == SERVING
        stopper = threading.Thread(target=live.call,
                                   args=(stop_grpc_server(live.server, 3.0),))
        stopper.start()
        # The open Watch is an in-flight call: during the grace period it sees the change.
        assert next(watch).status == NOT_SERVING
        watch.cancel()
        stopper.join(10)


def test_reflection_lists_the_services(grpc_live: LiveGrpc) -> None:
    with grpc.insecure_channel(grpc_live.target) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"inference.GRPCInferenceService", "rigserve.v1.RigStream",
            "grpc.health.v1.Health"} <= services


def test_calls_without_a_valid_api_key_are_unauthenticated(tiny_repo: Path) -> None:
    x = np.zeros((1, 256, 4), np.float32)
    inp = tgrpc.InferInput("lidar", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    with live_grpc(tiny_repo, api_keys=["k-123", "k-456"]) as live:
        client = tgrpc.InferenceServerClient(live.target)
        with pytest.raises(InferenceServerException, match="API key is required") as info:
            client.infer("rig", [inp])
        assert info.value.status() == "StatusCode.UNAUTHENTICATED"
        with pytest.raises(InferenceServerException, match="not one of") as info:
            client.infer("rig", [inp], headers={"authorization": "Bearer wrong"})
        assert info.value.status() == "StatusCode.UNAUTHENTICATED"
        good = client.infer("rig", [inp], headers={"authorization": "Bearer k-456"})
        assert good.as_numpy("joints").shape == (1, 17, 3)
        assert client.infer("rig", [inp], headers={"x-api-key": "k-123"}) is not None
        assert client.is_server_live()  # probes need no key
        with grpc.insecure_channel(live.target) as channel:
            assert _check(channel) == SERVING
            refused = LockStep(channel)
            with pytest.raises(grpc.RpcError) as rpc:
                refused.send(rig_frame(0, 0.1, {"lidar": sample_raw_frames()["lidar"]}))
            assert rpc.value.code() == grpc.StatusCode.UNAUTHENTICATED
            allowed = LockStep(channel, metadata=(("x-api-key", "k-123"),))
            answer = allowed.send(rig_frame(0, 0.1, {"lidar": sample_raw_frames()["lidar"]}))
            assert answer.prediction.subset == "lidar"
            allowed.close()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a cert")
def test_tls_serves_tls_clients_only(tiny_repo: Path, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with live_grpc(tiny_repo, tls_cert=cert, tls_key=key) as live:
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(live.target, creds) as channel:
            assert _check(channel) == SERVING
        client = tgrpc.InferenceServerClient(live.target, ssl=True,
                                             root_certificates=str(cert))
        assert client.is_server_ready()
        with grpc.insecure_channel(live.target) as plain, pytest.raises(grpc.RpcError) as info:
            _check(plain)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_an_error_echoing_a_huge_name_keeps_its_status_and_a_bounded_message(
        grpc_live: LiveGrpc) -> None:
    # Status details travel in the trailers; past the client's metadata limit (16 KiB)
    # the call would end RESOURCE_EXHAUSTED 'Stream removed', the real error lost.
    client = tgrpc.InferenceServerClient(grpc_live.target)
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("m" * 100_000)
    assert info.value.status() == "StatusCode.NOT_FOUND"
    assert info.value.message().startswith("unknown model 'mmm")
    assert info.value.message().endswith(" more bytes cut]")
    assert len(info.value.message()) < 4096
    request = pb.ModelInferRequest(model_name="rig")
    for i in range(3000):
        request.inputs.add(name=f"in{i:05d}", datatype="FP32",
                           shape=[1]).contents.fp32_contents.append(0.0)
    with grpc.insecure_channel(grpc_live.target) as channel, \
            pytest.raises(grpc.RpcError) as rpc:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc.value.details().startswith("unknown input 'in00000', 'in00001'")
    # Five names say what went wrong (REST answers the same words).
    assert "'in00004' and 2995 more for model rig; inputs are " in rpc.value.details()


def _oversized_request(n_bytes: int) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="rig", raw_input_contents=[b"\0" * n_bytes])
    request.inputs.add(name="depth", datatype="FP32", shape=[1, 1, 48, 64])
    return request


def test_default_message_limit_takes_full_size_frames(grpc_live: LiveGrpc) -> None:
    # 6 MiB is past gRPC's 4 MiB default: it must reach the server and be judged there.
    options = [("grpc.max_send_message_length", 64 << 20)]
    with grpc.insecure_channel(grpc_live.target, options=options) as channel, \
            pytest.raises(grpc.RpcError) as info:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(_oversized_request(6 << 20))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs 12288 raw bytes" in info.value.details()


def test_configured_message_limit_refuses_bigger_messages(tiny_repo: Path) -> None:
    options = [("grpc.max_send_message_length", 64 << 20)]
    with live_grpc(tiny_repo, grpc_max_message_bytes=4 << 20) as live, \
            grpc.insecure_channel(live.target, options=options) as channel, \
            pytest.raises(grpc.RpcError) as info:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(_oversized_request(6 << 20))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
