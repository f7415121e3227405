"""Cancellation and shutdown against a real server: callers that give up mid-inference,
clients that hang up before their answer, and a server stopped while requests are in flight.

Afterwards the server must be idle (nothing in flight, nothing queued, every engine thread
alive), still answer, and have logged no error: a caller leaving is not a server fault.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from rigserve.proto import grpc_service_pb2 as pb
from rigserve.proto import grpc_service_pb2_grpc as pb_grpc

from tests.server.live_server import (
    ServerHandle,
    serve_in_subprocess,
    serve_in_thread,
    wait_until,
)
from tests.server.repo_factory import build_tiny_repo, sample_files, sample_raw_frames

ROWS = 32  # rows per request: one request fills a batch of the slow engine
Request = tuple[bytes, dict[str, str]]  # an HTTP body and its headers


@pytest.fixture(scope="module")
def slow_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A wide LiDAR-only model: a burst of 32-row requests queues up behind the engine, so
    # callers give up while their requests wait for it or run on it.
    return build_tiny_repo(tmp_path_factory.mktemp("slow"), modalities=("lidar",), hidden=4096)


@pytest.fixture(scope="module")
def slow_live(slow_repo: Path) -> Iterator[ServerHandle]:
    # inline_max_ms=0: every request goes through the batcher's queue and engine thread.
    with serve_in_thread(slow_repo, grpc=True, inline_max_ms=0, max_batch_size=ROWS) as handle:
        yield handle


#: grpc-python logs this at ERROR when a call's deadline passes in the instant its answer
#: or error status is sent, before grpc has noticed the call ended (it ignores the failed
#: send once it has): a race inside grpc, not a rigserve fault.
GRPC_LATE_SEND = "ExecuteBatchError raised in core by servicer method"


@pytest.fixture
def no_server_errors(caplog: pytest.LogCaptureFixture,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if the in-process server logged an ERROR while it ran."""
    # uvicorn's own logger stops at itself; caplog listens on the root logger.
    monkeypatch.setattr(logging.getLogger("uvicorn"), "propagate", True)
    yield
    errors = [r.getMessage() for r in caplog.get_records("call")
              if r.levelno >= logging.ERROR and not r.getMessage().startswith(GRPC_LATE_SEND)]
    assert not errors, errors


# ---- requests ------------------------------------------------------------------------------

def _lidar(rows: int) -> np.ndarray:
    return np.random.default_rng(rows).random((rows, 256, 4)).astype(np.float32)  # (B, 256, 4)


def _grpc_request(rows: int = ROWS) -> pb.ModelInferRequest:
    x = _lidar(rows)
    request = pb.ModelInferRequest(model_name="rig", raw_input_contents=[x.tobytes()])
    request.inputs.add(name="lidar", datatype="FP32", shape=list(x.shape))
    return request


def _kserve_request(rows: int = ROWS) -> Request:
    """A Triton binary-tensor infer body and its headers."""
    x = _lidar(rows)
    head = json.dumps({"inputs": [{"name": "lidar", "shape": list(x.shape), "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    return head + x.tobytes(), {"Inference-Header-Content-Length": str(len(head))}


def _rig_json() -> Request:
    body = json.dumps({"frames": {"lidar": sample_raw_frames()["lidar"].tolist()}}).encode()
    return body, {"Content-Type": "application/json"}


def _rig_multipart() -> Request:
    boundary = "rigserve-test-boundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="lidar"; '
            'filename="frame001.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode() + sample_files()["lidar"] + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _post(port: int, path: str, body: bytes, headers: dict[str, str], *,
          sent: int | None = None) -> socket.socket:
    """A raw HTTP/1.1 POST (one connection, closed by the server after its answer) of which
    only the first ``sent`` body bytes go out when given."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body[:sent])
    return sock


def _answer(sock: socket.socket) -> str:
    """The status of a complete HTTP answer; "refused" when not one byte came back;
    "cut ..." when the answer stopped short of its Content-Length."""
    data = b""
    with sock:
        try:
            while chunk := sock.recv(1 << 16):
                data += chunk
        except ConnectionError:
            pass
    if not data:
        return "refused"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = [int(v) for k, _, v in (h.partition(":") for h in lines[1:])
              if k.lower() == "content-length"]
    if not length or len(body) != length[0]:
        return f"cut after {len(data)} bytes: {lines[0]!r}"
    return lines[0].split()[1]


def _rest_once(port: int, body: bytes, headers: dict[str, str]) -> str:
    try:
        sock = _post(port, "/v2/models/rig/infer", body, headers)
    except ConnectionError:  # refused, or reset while sending: the server never read it
        return "refused"
    return _answer(sock)


# ---- server state --------------------------------------------------------------------------

def _sample(handle: ServerHandle, name: str, **labels: str) -> float:
    value = handle.app.state.service.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


def _codes(service: Any, protocol: str) -> Counter[str]:
    """rigserve_requests_total of ``protocol`` by code."""
    counts: Counter[str] = Counter()
    for family in service.metrics.registry.collect():
        for s in family.samples:
            if s.name == "rigserve_requests_total" and s.labels["protocol"] == protocol:
                counts[s.labels["code"]] += int(s.value)
    return counts


def _batchers(service: Any) -> list[Any]:
    return list(service._current().batchers.values())  # no public view of the batchers


def _idle(handle: ServerHandle) -> bool:
    """Nothing in flight, nothing queued."""
    batchers = _batchers(handle.app.state.service)
    return (_sample(handle, "rigserve_inflight_requests") == 0
            and all(b.queued == 0 for b in batchers))


def _assert_idle_and_answering(handle: ServerHandle) -> None:
    wait_until(lambda: _idle(handle), "in-flight requests to drain")
    threads = [t for b in _batchers(handle.app.state.service) for t in b._threads]
    assert threads
    assert all(t.is_alive() for t in threads)
    with grpc.insecure_channel(handle.grpc_target) as channel:
        answer = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(_grpc_request(1),
                                                                     timeout=10)
    assert answer.parameters["subset"].string_param == "lidar"
    body, headers = _kserve_request(1)
    assert httpx.post(f"{handle.url}/v2/models/rig/infer", content=body, headers=headers,
                      timeout=10).status_code == 200
    body, headers = _rig_json()
    r = httpx.post(f"{handle.url}/v1/rigs/r1/infer", content=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.text


def _settle(handle: ServerHandle) -> None:
    """Wait until uvicorn is done with every request sent so far, answered or dropped: a
    request sent after them is answered (so theirs were read first), then no connection
    and no request task is left."""
    assert httpx.get(f"{handle.url}/healthz", timeout=10).status_code == 200
    state = handle.uvicorn.server_state
    wait_until(lambda: not state.connections and not state.tasks,
               "uvicorn to finish every request")


# ---- callers that give up ------------------------------------------------------------------

@pytest.mark.usefixtures("no_server_errors")
def test_grpc_deadlines_expiring_mid_inference_leave_the_server_idle_and_answering(
        slow_live: ServerHandle) -> None:
    service = slow_live.app.state.service
    before = _codes(service, "kserve_grpc")
    with grpc.insecure_channel(slow_live.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        calls = [stub.ModelInfer.future(_grpc_request(), timeout=0.02) for _ in range(64)]
        codes = Counter(call.code() for call in calls)
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED}, codes
    assert codes[grpc.StatusCode.DEADLINE_EXCEEDED], codes
    _assert_idle_and_answering(slow_live)
    counted = _codes(service, "kserve_grpc") - before
    # A handler cancelled because its caller left is the caller's doing, not a server bug.
    assert counted["CANCELLED"] > 0, counted
    assert set(counted) <= {"OK", "CANCELLED"}, counted


@pytest.mark.usefixtures("no_server_errors")
def test_rest_clients_hanging_up_before_the_answer_leave_the_server_idle_and_answering(
        slow_live: ServerHandle) -> None:
    service = slow_live.app.state.service
    before = {p: _codes(service, p) for p in ("kserve_http", "rest")}
    kserve, kserve_headers = _kserve_request()
    rig, rig_headers = _rig_json()
    # Raw sockets closed as soon as the whole request is out...
    for _ in range(16):
        _post(slow_live.http_port, "/v2/models/rig/infer", kserve, kserve_headers).close()
    for _ in range(8):
        _post(slow_live.http_port, "/v1/rigs/r1/infer", rig, rig_headers).close()
    # ...and a client that gives up a millisecond into waiting for its answers.
    timeout = httpx.Timeout(10.0, read=0.001)
    with httpx.Client(timeout=timeout) as client:
        for _ in range(8):
            with contextlib.suppress(httpx.ReadTimeout):
                client.post(f"{slow_live.url}/v2/models/rig/infer", content=kserve,
                            headers=kserve_headers)
    _settle(slow_live)
    _assert_idle_and_answering(slow_live)
    for protocol, counted in before.items():
        assert set(_codes(service, protocol) - counted) <= {"200"}, _codes(service, protocol)


@pytest.mark.usefixtures("no_server_errors")
@pytest.mark.parametrize(("path", "make"), [
    ("/v1/rigs/r1/infer", _rig_json), ("/v1/rigs/r1/infer", _rig_multipart),
    ("/v2/models/rig/infer", _kserve_request)], ids=["rig-json", "rig-multipart", "kserve"])
def test_a_client_hanging_up_mid_upload_is_neither_an_error_nor_a_500(
        slow_live: ServerHandle, path: str, make: Callable[[], Request]) -> None:
    service = slow_live.app.state.service
    protocol = "rest" if path.startswith("/v1") else "kserve_http"
    before = _codes(service, protocol)
    body, headers = make()
    _post(slow_live.http_port, path, body, headers, sent=len(body) // 2).close()
    _settle(slow_live)
    # Nobody is left to answer: nothing to count either, as for a client that never sent.
    assert _codes(service, protocol) == before
    _assert_idle_and_answering(slow_live)


# ---- shutdown ------------------------------------------------------------------------------

class _Load:
    """REST clients (a new connection per request) and gRPC clients sending back to back
    until stopped; keeps every outcome with the time it came back."""

    def __init__(self, clients: int = 3) -> None:
        self.clients = clients
        self.outcomes: list[tuple[str, str, float]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, handle: ServerHandle) -> None:
        self._threads = [threading.Thread(target=self._rest, args=(handle,), daemon=True)
                         for _ in range(self.clients)]
        self._threads += [threading.Thread(target=self._grpc, args=(handle,), daemon=True)
                          for _ in range(self.clients)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def count(self, protocol: str, outcome: str, after: float = 0.0) -> int:
        return sum(1 for p, o, t in self.outcomes if p == protocol and o == outcome and t > after)

    def seen(self, protocol: str) -> set[str]:
        return {o for p, o, _ in self.outcomes if p == protocol}

    def _rest(self, handle: ServerHandle) -> None:
        body, headers = _kserve_request()
        while not self._stop.is_set():
            outcome = _rest_once(handle.http_port, body, headers)
            self.outcomes.append(("rest", outcome, time.monotonic()))

    def _grpc(self, handle: ServerHandle) -> None:
        request = _grpc_request()
        assert handle.grpc_target is not None
        with grpc.insecure_channel(handle.grpc_target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            while not self._stop.is_set():
                try:
                    stub.ModelInfer(request, timeout=30)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as exc:
                    code = exc.code()
                self.outcomes.append(("grpc", code.name, time.monotonic()))


def _under_way(load: _Load) -> bool:
    return load.count("rest", "200") >= 3 and load.count("grpc", "OK") >= 3


#: gRPC core answers CANCELLED to a call it has read off the wire but not yet handed to
#: the application when the server shuts down (grpc/grpc#41785): rigserve never saw it.
#: test_lifespan_shutdown_answers_every_request_it_took_in checks that on the server side.
GRPC_REFUSED = {"UNAVAILABLE", "CANCELLED"}


@pytest.mark.usefixtures("no_server_errors")
def test_lifespan_shutdown_answers_every_request_it_took_in(slow_repo: Path) -> None:
    load = _Load()
    try:
        with serve_in_thread(slow_repo, grpc=True, inline_max_ms=0, max_batch_size=ROWS,
                             drain_timeout_s=5) as live:
            service = live.app.state.service
            load.start(live)
            wait_until(lambda: _under_way(load), "the load to get answers")
        # Leaving the block ran the lifespan's shutdown with the clients still sending.
        wait_until(lambda: bool(load.count("rest", "refused")
                                and load.count("grpc", "UNAVAILABLE")),
                   "both protocols to refuse the clients")
    finally:
        load.stop()
    assert load.seen("rest") <= {"200", "refused"}, load.seen("rest")
    assert load.seen("grpc") <= {"OK"} | GRPC_REFUSED, load.seen("grpc")
    # Every request the server counted was answered in full, and it counted no failure:
    # nothing it had taken in was cut off or cancelled.
    assert _codes(service, "kserve_http") == {"200": load.count("rest", "200")}
    assert _codes(service, "kserve_grpc") == {"OK": load.count("grpc", "OK")}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_process_stopped_under_load_answers_what_it_took_and_refuses_the_rest(
        slow_repo: Path, sig: signal.Signals) -> None:
    drain_s = 5.0
    load = _Load()
    with serve_in_subprocess(slow_repo, "--inline-max-ms", "0", "--max-batch-size", str(ROWS),
                             grpc=True, env={"RIGSERVE_DRAIN_TIMEOUT_S": str(drain_s)}) as live:
        assert live.process is not None
        try:
            load.start(live)
            wait_until(lambda: _under_way(load), "the load to get answers")
            signalled = time.monotonic()
            live.process.send_signal(sig)
            # uvicorn re-raises the signal once it has shut down, so a process manager sees
            # the exit it asked for; either way it exits within its grace period.
            assert live.process.wait(timeout=drain_s) in (0, -sig)
            wait_until(lambda: bool(load.count("rest", "refused", after=signalled)
                                    and load.count("grpc", "UNAVAILABLE", after=signalled)),
                       "both protocols to refuse the clients")
        finally:
            load.stop()
    assert load.seen("rest") <= {"200", "refused"}, load.seen("rest")
    assert load.seen("grpc") <= {"OK"} | GRPC_REFUSED, load.seen("grpc")
    # It went on answering after the signal, until it stopped taking requests in.
    assert load.count("rest", "200", after=signalled) + load.count("grpc", "OK", after=signalled)


def test_a_drain_timeout_under_a_second_still_bounds_the_shutdown(slow_repo: Path) -> None:
    with serve_in_subprocess(slow_repo, env={"RIGSERVE_DRAIN_TIMEOUT_S": "0.5"}) as live:
        assert live.process is not None
        body, headers = _rig_json()
        stalled = _post(live.http_port, "/v1/rigs/r1/infer", body, headers, sent=len(body) // 2)
        # Answered on a later connection: the server has read the stalled request's head.
        assert httpx.get(f"{live.url}/healthz").status_code == 200
        live.process.send_signal(signal.SIGTERM)
        assert live.process.wait(timeout=10) in (0, -signal.SIGTERM)
        # uvicorn answers a request it had to cancel with a complete 500.
        assert _answer(stalled) == "500"


def test_one_drain_budget_covers_http_and_grpc_and_health_turns_at_the_signal(
        slow_repo: Path) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    drain_s = 2.0
    with serve_in_subprocess(slow_repo, grpc=True,
                             env={"RIGSERVE_DRAIN_TIMEOUT_S": str(drain_s)}) as live, \
            grpc.insecure_channel(f"127.0.0.1:{live.grpc_port}") as channel:
        assert live.process is not None
        # A stalled upload holds uvicorn's HTTP drain for the whole budget; an open health
        # Watch used to hold the gRPC stop for a second budget after it.
        body, headers = _rig_json()
        stalled = _post(live.http_port, "/v1/rigs/r1/infer", body, headers, sent=len(body) // 2)
        assert httpx.get(f"{live.url}/healthz").status_code == 200
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(),
                                                          timeout=30)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        signalled = time.monotonic()
        live.process.send_signal(signal.SIGTERM)
        # NOT_SERVING at the signal, while HTTP is still draining, and then the call ends.
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert time.monotonic() - signalled < drain_s / 2
        assert list(watch) == []
        assert live.process.wait(timeout=10) in (0, -signal.SIGTERM)
        took = time.monotonic() - signalled
        _answer(stalled)
    assert took < drain_s + 1.5  # one budget, not HTTP's and then gRPC's
