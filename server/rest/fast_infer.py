"""KServe v2 infer as a plain ASGI app that answers before FastAPI's middleware stack.

Infer is the one endpoint on the hot path: FastAPI's layers (error and exception
middleware, the exit stack, route matching over every route, the request wrapper) cost
about as much event-loop time per request as the whole binary body parse. So
:class:`RigserveApp` sends ``POST /v2/models/{m}[/versions/{v}]/infer`` straight here,
through the same API-key and body-limit middleware as every other route, and hands
everything else to FastAPI. Errors take the same shape and status as the FastAPI error
boundary's (`handlers.py`): ``{"error": "..."}`` with Triton's status mapping.
"""

from __future__ import annotations

import json
import logging
import re
import time

from fastapi import FastAPI
from rigserve.sensors.errors import SensorError
from rigserve.server.errors import ModelNotFound, ServerError, TimedOut
from rigserve.server.model_info import VERSION
from rigserve.server.rest.handlers import describe
from rigserve.server.rest.kserve_codec import build_response, decompress, parse_request
from rigserve.server.rest.security import ApiKeyMiddleware, BodyLimitMiddleware
from rigserve.server.service import InferenceService
from rigserve.server.settings import Settings
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

PROTOCOL = "kserve_http"
INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")


def check_version(model: str, version: str | None) -> None:
    if version is not None and version != VERSION:
        raise ModelNotFound(f"model {model!r} has no version {version!r}; versions: [{VERSION}]")


async def kserve_infer(service: InferenceService, model: str, version: str | None, body: bytes,
                       *, content_encoding: str | None, header_length: str | None
                       ) -> tuple[bytes, dict[str, str]]:
    """One KServe v2 infer: the response body and its headers (raises ServerError)."""
    t0 = time.perf_counter()
    check_version(model, version)
    service.catalog.check(model)
    parsed = parse_request(decompress(body, content_encoding, service.settings.max_body_bytes),
                           header_length)
    outputs = await service.infer_tensors(model, parsed.inputs, protocol=PROTOCOL,
                                          timeout_us=parsed.timeout_us)
    params = {"engine": outputs.engine, "subset": outputs.subset,
              "server_ms": round((time.perf_counter() - t0) * 1e3, 3)}
    content, header_len = build_response(model, VERSION, parsed, outputs, params)
    if header_len is None:
        return content, {"content-type": "application/json"}
    return content, {"content-type": "application/octet-stream",
                     "inference-header-content-length": str(header_len)}


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _error(service: InferenceService, model: str, exc: Exception
           ) -> tuple[int, bytes, dict[str, str]]:
    status, message, headers = describe(exc)
    if not isinstance(exc, (ServerError, SensorError)):
        # A bug, not the client's fault: log the traceback, answer without internals.
        logger.error("unhandled error in infer on %s", model, exc_info=exc)
    elif status >= 500 and not isinstance(exc, TimedOut):  # a timeout is the client's own
        logger.error("POST infer on %s: %s", model, message)
    service.record_rejected(PROTOCOL, model, exc)
    return status, json.dumps({"error": message}).encode(), {
        "content-type": "application/json", **{k.lower(): v for k, v in headers.items()}}


class _Infer:
    def __init__(self, service: InferenceService) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = INFER_PATH.fullmatch(scope["path"])
        assert match is not None  # RigserveApp routes only matching paths here
        model, version = match.group(1), match.group(2)
        headers: dict[bytes, bytes] = dict(scope["headers"])
        encoding = headers.get(b"content-encoding")
        length = headers.get(b"inference-header-content-length")
        try:
            chunks = []
            while True:
                # The body limit's receive raises PayloadTooLarge past the limit.
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client left before sending its body: nobody to answer
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body, extra = await kserve_infer(
                self.service, model, version, b"".join(chunks),
                content_encoding=None if encoding is None else encoding.decode("latin-1"),
                header_length=None if length is None else length.decode("latin-1"))
        except Exception as exc:
            status, body, extra = _error(self.service, model, exc)
            await _send(send, status, body, extra)
            return
        await _send(send, 200, body, extra)


class RigserveApp(FastAPI):
    """FastAPI, with KServe infer answered by :class:`_Infer` in front of its stack."""

    def install_fast_path(self, service: InferenceService, settings: Settings) -> None:
        # The same guards, in the same order, as add_middleware gives every other route.
        self._fast: ASGIApp = BodyLimitMiddleware(
            ApiKeyMiddleware(_Infer(service), keys=settings.api_keys,
                             exempt=settings.auth_exempt_paths),
            limit=settings.max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            # HEAD wherever GET is: every general-purpose server supports both (RFC 9110
            # §9.1) and FastAPI's routes do not add it, so a load balancer probing
            # /v2/health/ready with HEAD got 405. uvicorn keeps its own record of the
            # method and sends the headers only.
            scope = {**scope, "method": "GET"}
        fast = self.__dict__.get("_fast")
        if (fast is not None and scope["type"] == "http" and scope["method"] == "POST"
                and INFER_PATH.fullmatch(scope["path"])):
            scope["app"] = self
            await fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


__all__ = ["RigserveApp", "check_version", "kserve_infer"]
