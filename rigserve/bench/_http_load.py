"""HTTP load generators for `rigserve bench serve` (KServe v2 binary/JSON, the rig endpoint).

Each client keeps one keep-alive connection and sends a prebuilt request per ``call()``;
they register in the benchmark's client registry (`_clients.CLIENTS`) as
``kserve_binary``, ``kserve_json``, ``rest_json`` and ``rest_multipart``, and a health
probe in `_clients.TRANSPORT` (HTTP's fixed cost). The factories
read ``target.http_port``, ``target.tensors`` (model-ready, batch 1), ``target.raw`` and
``target.files`` (MM-Fi file bytes).
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import numpy as np

from rigserve.bench._clients import CLIENTS, TRANSPORT, Target
from rigserve.server.tensors import kserve_dtype


class _HttpClient:
    """A minimal keep-alive HTTP/1.1 client: its own overhead is microseconds, not httpx's
    milliseconds, so the figures are the server's."""

    def __init__(self, port: int, path: str, body: bytes, headers: dict[str, str],
                 method: str = "POST") -> None:
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}",
                *(f"{k}: {v}" for k, v in headers.items())]
        self._request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self._port = port

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        self._writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP,
                                                         socket.TCP_NODELAY, 1)

    async def call(self) -> None:
        self._writer.write(self._request)
        status = await self._reader.readline()
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self._reader.readexactly(length)
        if b" 200 " not in status:
            raise RuntimeError(f"server answered {status.decode().strip()}: {body[:200]!r}")

    async def close(self) -> None:
        self._writer.close()


def _kserve_body(tensors: dict[str, np.ndarray], binary: bool) -> tuple[bytes, dict[str, str]]:
    inputs, blobs = [], []
    for name, arr in tensors.items():
        spec: dict[str, Any] = {"name": name, "shape": list(arr.shape),
                                "datatype": kserve_dtype(arr.dtype)}
        if binary:
            spec["parameters"] = {"binary_data_size": arr.nbytes}
            blobs.append(arr.tobytes())
        else:
            spec["data"] = arr.reshape(-1).tolist()
        inputs.append(spec)
    head = json.dumps({"inputs": inputs,
                       "parameters": {"binary_data_output": binary}}).encode()
    if not binary:
        return head, {"Content-Type": "application/json"}
    return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head))}


@CLIENTS.register("kserve_binary")
def _kserve_binary(t: Target) -> _HttpClient:
    body, headers = _kserve_body(t.tensors, binary=True)
    return _HttpClient(t.http_port, "/v2/models/rig/infer", body, headers)


@CLIENTS.register("kserve_json")
def _kserve_json(t: Target) -> _HttpClient:
    body, headers = _kserve_body(t.tensors, binary=False)
    return _HttpClient(t.http_port, "/v2/models/rig/infer", body, headers)


@CLIENTS.register("rest_json")
def _rest_json(t: Target) -> _HttpClient:
    body = json.dumps({"frames": {m: a.tolist() for m, a in t.raw.items()}}).encode()
    return _HttpClient(t.http_port, "/v1/rigs/bench/infer", body,
                       {"Content-Type": "application/json"})


@CLIENTS.register("rest_multipart")
def _rest_multipart(t: Target) -> _HttpClient:
    boundary = "rigservebench"
    parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{m}\"; "
              f"filename=\"frame001\"\r\nContent-Type: application/octet-stream\r\n\r\n"
              ).encode() + data + b"\r\n" for m, data in t.files.items()]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return _HttpClient(t.http_port, "/v1/rigs/bench/infer", body,
                       {"Content-Type": f"multipart/form-data; boundary={boundary}"})


@TRANSPORT.register("http GET /v2/health/live")
def _http_live(t: Target) -> _HttpClient:
    return _HttpClient(t.http_port, "/v2/health/live", b"", {}, method="GET")
