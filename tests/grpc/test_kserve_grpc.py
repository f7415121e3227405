"""tritonclient.grpc, unmodified, against a real rigserve gRPC server."""

from __future__ import annotations

import queue
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
from rigserve.sensors.preprocess import PreprocessSpec, model_input_shape
from rigserve.sensors.specs import SENSOR_MODALITIES, all_subsets, subset_name
from rigserve.server.settings import Settings
from tritonclient.utils import InferenceServerException

from tests.grpc.grpc_server import LiveGrpc, live_grpc

SUBSETS = [subset_name(s) for s in all_subsets(SENSOR_MODALITIES)]


def _inputs(subset: str, batch: int = 1, seed: int = 0) -> list[tgrpc.InferInput]:
    rng = np.random.default_rng(seed)
    out = []
    for m in subset.split("+"):
        x = rng.uniform(0, 1, (batch, *model_input_shape(m, PreprocessSpec()))).astype(np.float32)
        inp = tgrpc.InferInput(m, list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        out.append(inp)
    return out


@pytest.fixture(scope="module")
def client(grpc_live: LiveGrpc) -> tgrpc.InferenceServerClient:
    return tgrpc.InferenceServerClient(grpc_live.target)


def test_server_live_ready_and_metadata(client: tgrpc.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.get_server_metadata().name == "rigserve"
    assert client.is_model_ready("rig")
    assert not client.is_model_ready("nope")
    meta = client.get_model_metadata("rig.depth+lidar")
    assert sorted(i.name for i in meta.inputs) == ["depth", "lidar"]
    assert next(iter(meta.outputs[0].shape)) == -1
    config = client.get_model_config("rig.lidar").config
    assert config.input[0].name == "lidar"
    assert list(config.input[0].dims) == list(model_input_shape("lidar", PreprocessSpec()))


@pytest.mark.parametrize("subset", SUBSETS)
def test_tritonclient_infers_every_subset_through_the_router(
        client: tgrpc.InferenceServerClient, subset: str) -> None:
    result = client.infer("rig", _inputs(subset, batch=2), request_id=f"r-{subset}")
    joints = result.as_numpy("joints")
    assert joints.shape == (2, 17, 3)
    assert joints.dtype == np.float32
    assert result.as_numpy("action_logits").shape == (2, 27)
    response = result.get_response()
    assert response.id == f"r-{subset}"
    assert response.parameters["subset"].string_param == subset


def test_an_answer_names_the_version_that_ran_as_triton_does(
        client: tgrpc.InferenceServerClient) -> None:
    for asked in ("", "1"):  # "" asks for the latest
        response = client.infer("rig", _inputs("lidar"), model_version=asked).get_response()
        assert (response.model_name, response.model_version) == ("rig", "1")


def test_subset_engine_by_name_matches_routed_answer(client: tgrpc.InferenceServerClient) -> None:
    routed = client.infer("rig", _inputs("lidar+wifi", seed=3)).as_numpy("joints")
    named = client.infer("rig.lidar+wifi", _inputs("lidar+wifi", seed=3)).as_numpy("joints")
    other = client.infer("rig.lidar", _inputs("lidar", seed=3)).as_numpy("joints")
    np.testing.assert_array_equal(routed, named)
    assert not np.allclose(routed, other)  # a different subset is a different engine


def test_requested_outputs_and_parameters_as_tritonclient_sends_them(
        client: tgrpc.InferenceServerClient) -> None:
    result = client.infer("rig", _inputs("depth"), outputs=[tgrpc.InferRequestedOutput("joints")],
                          priority=3, timeout=5_000_000)
    assert result.as_numpy("joints").shape == (1, 17, 3)
    assert result.as_numpy("action_logits") is None


def test_an_output_requested_twice_is_invalid_argument(
        client: tgrpc.InferenceServerClient) -> None:
    def runs() -> int:
        return int(client.get_inference_statistics("rig").model_stats[0].inference_count)

    twice = [tgrpc.InferRequestedOutput("joints"), tgrpc.InferRequestedOutput("joints")]
    before = runs()
    with pytest.raises(InferenceServerException,
                       match=r"output 'joints' is requested twice; name each output once"
                       ) as info:
        client.infer("rig", _inputs("depth"), outputs=twice)
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert runs() == before  # refused before the model ran


def test_typed_contents_inputs_give_the_same_answer_as_raw(
        grpc_live: LiveGrpc, client: tgrpc.InferenceServerClient) -> None:
    import grpc
    from rigserve.proto import grpc_service_pb2 as pb
    from rigserve.proto import grpc_service_pb2_grpc as pb_grpc

    x = np.random.default_rng(5).uniform(0, 1, (1, 256, 4)).astype(np.float32)
    request = pb.ModelInferRequest(model_name="rig")
    tensor = request.inputs.add(name="lidar", datatype="FP32", shape=[1, 256, 4])
    tensor.contents.fp32_contents.extend(x.reshape(-1).tolist())
    with grpc.insecure_channel(grpc_live.target) as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    typed = np.frombuffer(response.raw_output_contents[0], np.float32)
    inp = tgrpc.InferInput("lidar", [1, 256, 4], "FP32")
    inp.set_data_from_numpy(x)
    raw = client.infer("rig", [inp]).as_numpy(response.outputs[0].name)
    np.testing.assert_array_equal(typed, raw.reshape(-1))


@pytest.mark.parametrize(("model", "inputs", "status", "match"), [
    ("nope", "depth", "NOT_FOUND", "nope"),
    ("rig.depth", "lidar", "INVALID_ARGUMENT", "lidar"),
])
def test_errors_carry_the_right_status_code(
        client: tgrpc.InferenceServerClient, model: str, inputs: str, status: str,
        match: str) -> None:
    with pytest.raises(InferenceServerException, match=match) as info:
        client.infer(model, _inputs(inputs))
    assert info.value.status() == f"StatusCode.{status}"


def test_wrong_raw_byte_count_is_invalid_argument(grpc_live: LiveGrpc) -> None:
    import grpc
    from rigserve.proto import grpc_service_pb2 as pb
    from rigserve.proto import grpc_service_pb2_grpc as pb_grpc

    request = pb.ModelInferRequest(model_name="rig", raw_input_contents=[b"\0" * 12])
    request.inputs.add(name="lidar", datatype="FP32", shape=[1, 256, 4])
    with grpc.insecure_channel(grpc_live.target) as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs 4096 raw bytes, got 12" in info.value.details()


def _invalid_argument(grpc_live: LiveGrpc, request: object) -> str:
    import grpc
    from rigserve.proto import grpc_service_pb2_grpc as pb_grpc

    with grpc.insecure_channel(grpc_live.target) as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    return str(info.value.details())


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "contents"])
def test_an_empty_tensor_of_unbuildable_shape_is_invalid_argument(grpc_live: LiveGrpc,
                                                                  raw: bool) -> None:
    from rigserve.proto import grpc_service_pb2 as pb

    request = pb.ModelInferRequest(model_name="rig", raw_input_contents=[b""] if raw else [])
    request.inputs.add(name="lidar", datatype="FP32", shape=[2**62, 2**62, 0])
    assert "shape [4611686018427387904, 4611686018427387904, 0] is too large" in (
        _invalid_argument(grpc_live, request))


def test_a_bytes_shape_longer_than_its_data_is_invalid_argument(grpc_live: LiveGrpc) -> None:
    from rigserve.proto import grpc_service_pb2 as pb

    request = pb.ModelInferRequest(model_name="rig", raw_input_contents=[b""])
    request.inputs.add(name="lidar", datatype="BYTES", shape=[2**40])
    assert "BYTES data of 0 bytes holds at most 0 elements" in _invalid_argument(grpc_live,
                                                                                 request)


def test_an_input_in_both_contents_and_raw_input_contents_is_invalid_argument(
        grpc_live: LiveGrpc) -> None:
    from rigserve.proto import grpc_service_pb2 as pb

    # Two copies of one tensor that may disagree: which one to believe is a guess.
    x = np.zeros((1, 256, 4), np.float32)
    request = pb.ModelInferRequest(model_name="rig", raw_input_contents=[x.tobytes()])
    tensor = request.inputs.add(name="lidar", datatype="FP32", shape=[1, 256, 4])
    tensor.contents.fp32_contents.extend(np.ones(1024).tolist())
    assert _invalid_argument(grpc_live, request) == (
        "input 'lidar': has both contents and raw_input_contents; send one of them "
        "(raw_input_contents for every input, or contents for every input)")


@pytest.mark.parametrize(("datatype", "field", "value"), [
    ("UINT8", "uint_contents", 1000), ("INT8", "int_contents", -1000),
    ("UINT16", "uint_contents", 70000)])
def test_typed_contents_out_of_the_datatypes_range_are_invalid_argument(
        grpc_live: LiveGrpc, datatype: str, field: str, value: int) -> None:
    from rigserve.proto import grpc_service_pb2 as pb

    request = pb.ModelInferRequest(model_name="rig")
    tensor = request.inputs.add(name="lidar", datatype=datatype, shape=[1, 256, 4])
    getattr(tensor.contents, field).extend([value] * 1024)
    assert (f"input 'lidar': a value in contents.{field} is out of range for {datatype}"
            in _invalid_argument(grpc_live, request))


def test_stream_infer_reports_errors_in_band_and_keeps_the_stream_open(
        client: tgrpc.InferenceServerClient) -> None:
    results: queue.Queue[tuple[object, object]] = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        client.async_stream_infer("rig", _inputs("depth+wifi"), request_id="a")
        client.async_stream_infer("no_such_model", _inputs("depth"), request_id="b")
        client.async_stream_infer("rig", _inputs("mmwave"), request_id="c")
        answers = [results.get(timeout=10) for _ in range(3)]
    finally:
        client.stop_stream()
    (ok1, err1), (bad, err2), (ok2, err3) = answers
    assert err1 is None
    assert err3 is None
    assert ok1.get_response().id == "a"
    assert ok2.get_response().id == "c"
    assert ok2.as_numpy("joints").shape == (1, 17, 3)
    assert bad is None
    assert "no_such_model" in err2.message()


def test_stream_answers_are_marked_final_as_triton_marks_them(
        client: tgrpc.InferenceServerClient) -> None:
    # Clients that ask for enable_empty_final_response read until triton_final_response is
    # true; each request here has exactly one answer, so every answer is the final one.
    results: queue.Queue[tuple[object, object]] = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        client.async_stream_infer("rig", _inputs("lidar"), request_id="ok",
                                  enable_empty_final_response=True)
        client.async_stream_infer("no_such_model", _inputs("lidar"), request_id="bad",
                                  enable_empty_final_response=True)
        client.async_stream_infer("rig", _inputs("wifi"), request_id="plain")
        answers = [results.get(timeout=10) for _ in range(3)]
    finally:
        client.stop_stream()
    (ok, ok_error), (_, bad_error), (plain, _) = answers
    assert ok_error is None
    for result in (ok, plain):
        response = result.get_response()
        assert response.parameters["triton_final_response"].bool_param, response.id
    assert "no_such_model" in bad_error.message()


def test_model_statistics_count_each_answered_request(client: tgrpc.InferenceServerClient
                                                      ) -> None:
    def stats(model: str) -> tgrpc.service_pb2.ModelStatistics:
        (entry,) = client.get_inference_statistics(model).model_stats
        return entry

    before = stats("rig.lidar+wifi")
    for seed in range(3):
        client.infer("rig.lidar+wifi", _inputs("lidar+wifi", batch=2, seed=seed))
    after = stats("rig.lidar+wifi")
    s0, s1 = before.inference_stats, after.inference_stats
    # perf_analyzer finds the version it measured by the growth of the queue count, and
    # insists the three compute counts agree.
    assert (after.name, after.version) == ("rig.lidar+wifi", "1")
    assert s1.success.count - s0.success.count == 3
    assert s1.queue.count - s0.queue.count == 3
    assert s1.compute_input.count == s1.compute_infer.count == s1.compute_output.count
    assert s1.compute_infer.ns > s0.compute_infer.ns
    assert after.inference_count - before.inference_count == 6  # rows
    assert after.execution_count - before.execution_count == 3  # one at a time: 3 runs
    assert after.last_inference > 0
    bad = tgrpc.InferInput("lidar", [1, 255, 4], "FP32")  # wrong shape: refused, counted
    bad.set_data_from_numpy(np.zeros((1, 255, 4), np.float32))
    with pytest.raises(InferenceServerException):
        client.infer("rig.lidar+wifi", [bad])
    fails = stats("rig.lidar+wifi").inference_stats.fail.count - s1.fail.count
    assert fails == 1
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.get_inference_statistics("nope")
    every = {m.name for m in client.get_inference_statistics("").model_stats}
    assert {"rig", "rig.lidar+wifi"} <= every  # "" asks for every model, as on Triton


def _stream_burst(live: LiveGrpc, model: str, count: int) -> tuple[list[str], int, int]:
    """Send ``count`` requests down one ModelStreamInfer stream at once; the answers' ids
    in arrival order, and the engine runs and rows the model's statistics grew by."""
    client = tgrpc.InferenceServerClient(live.target)

    def counts() -> tuple[int, int]:
        (entry,) = client.get_inference_statistics(model).model_stats
        return entry.execution_count, entry.inference_count

    runs0, rows0 = counts()
    results: queue.Queue[tuple[object, object]] = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        for i in range(count):
            client.async_stream_infer(model, _inputs(model.removeprefix("rig."), seed=i),
                                      request_id=str(i))
        answers = [results.get(timeout=10) for _ in range(count)]
    finally:
        client.stop_stream()
    assert [error for _, error in answers] == [None] * count
    runs1, rows1 = counts()
    return [r.get_response().id for r, _ in answers], runs1 - runs0, rows1 - rows0


# A long batching delay and no inline runs: requests of the stream that are in flight
# together are batched together, so one engine run per request means one at a time.
_BATCHING = {"max_queue_delay_ms": 200.0, "inline_max_ms": 0.0}


def test_a_request_past_its_timeout_is_unavailable_as_on_triton(tiny_repo: Path) -> None:
    # Queued behind a 200 ms batching delay, a 1 µs timeout always passes first.
    with live_grpc(tiny_repo, **_BATCHING) as live:
        client = tgrpc.InferenceServerClient(live.target)
        with pytest.raises(InferenceServerException) as info:
            client.infer("rig", _inputs("lidar"), timeout=1)
        assert info.value.status() == "StatusCode.UNAVAILABLE"
        assert info.value.message() == (
            "Request timeout expired: the request's timeout of 1 µs passed before its "
            "answer was ready; send a longer timeout or none, or retry")
        ok = client.infer("rig", _inputs("lidar"), timeout=10_000_000)  # 10 s: answered
        assert ok.as_numpy("joints").shape == (1, 17, 3)
        counted = live.service.metrics.registry.get_sample_value(
            "rigserve_requests_total",
            {"protocol": "kserve_grpc", "subset": "lidar", "code": "UNAVAILABLE"})
    assert counted == 1.0  # not CANCELLED: the server gave up, not the client


def test_stream_infer_limit_comes_from_the_environment_and_one_runs_requests_one_by_one(
        tiny_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGSERVE_INFER_STREAM_MAX_INFLIGHT", "1")
    with live_grpc(tiny_repo, **_BATCHING) as live:
        assert live.service.settings.infer_stream_max_inflight == 1
        ids, runs, rows = _stream_burst(live, "rig.lidar", 6)
    assert ids == [str(i) for i in range(6)]  # in order
    assert (runs, rows) == (6, 6)  # never two requests in flight: no batch of two


def test_stream_infer_limit_defaults_to_eight_and_must_be_at_least_one(tiny_repo: Path) -> None:
    assert Settings(repository=tiny_repo).infer_stream_max_inflight == 8
    with pytest.raises(ValueError, match="infer_stream_max_inflight"):
        Settings(repository=tiny_repo, infer_stream_max_inflight=0)
