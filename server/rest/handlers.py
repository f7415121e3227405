"""The REST error boundary: every exception becomes ``{"error": "..."}`` with its status.

KServe v2 / Triton answer errors as a JSON object with one ``error`` string; the rig
endpoint uses the same shape so clients handle one format. FastAPI's default 422 body
never escapes: request-validation errors are the client's mistake, answered 400.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from rigserve.sensors.errors import SensorError
from rigserve.server.errors import InvalidInput, ServerError, from_sensor_error
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

logger = logging.getLogger(__name__)


def protocol_of(path: str) -> str:
    return "kserve_http" if path.startswith("/v2") else "rest"


def model_of(request: Request) -> str:
    return str(request.path_params.get("model_name", "rig"))


def error_response(status: int, message: str, headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def describe(exc: BaseException) -> tuple[int, str, dict[str, str]]:
    """Status, message and headers an exception is answered with (also used by the
    infer fast path, which answers outside FastAPI)."""
    if isinstance(exc, SensorError):
        exc = from_sensor_error(exc)
    if isinstance(exc, ServerError):
        return exc.http_status, exc.message, exc.headers()
    return 500, f"internal error ({type(exc).__name__}); see the server log", {}


def _record(request: Request, exc: BaseException) -> None:
    service = getattr(request.app.state, "service", None)
    if service is not None and request.url.path.endswith("/infer"):
        service.record_rejected(protocol_of(request.url.path), model_of(request), exc)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    # ServerError and SensorError: the client's mistake or a known server state.
    _record(request, exc)
    status, message, headers = describe(exc)
    if status >= 500:
        logger.error("%s %s: %s", request.method, request.url.path, message)
    return error_response(status, message, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return await _server_error(request, InvalidInput("; ".join(parts) or "invalid request"))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no such endpoint {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    headers: dict[str, Any] | None = getattr(exc, "headers", None)
    return error_response(exc.status_code, message, headers)


async def _client_gone(request: Request, _exc: Exception) -> Response:
    # The client hung up before its body was read: nobody is left to answer and
    # nothing failed, so nothing to log as an error or count (the infer fast path drops
    # such a request the same way). 499 is nginx's "client closed request"; never sent.
    logger.debug("%s %s: the client left before its body was read", request.method,
                 request.url.path)
    return Response(status_code=499)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A bug, not the client's fault: log the traceback, answer without internals.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    _record(request, exc)
    return error_response(*describe(exc))


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServerError, _server_error)
    app.add_exception_handler(SensorError, _server_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
