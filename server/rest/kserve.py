"""KServe v2 / Open Inference Protocol over HTTP under ``/v2`` (Triton-compatible).

Server and model metadata, health, model ready, infer (JSON or Triton binary tensors),
Triton's model configuration (for perf_analyzer) and the repository extension's index
and load (load = atomic reload of the whole repository). Triton endpoints rigserve does
not implement (shared memory, trace and log settings) answer 400 saying so and what to
send instead, as the gRPC service answers their RPCs, not a bare "no such endpoint".
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from rigserve.server import extensions, jsonio
from rigserve.server.errors import InvalidInput, NotReady
from rigserve.server.model_info import VERSION
from rigserve.server.rest.deps import get_service
from rigserve.server.rest.fast_infer import check_version, kserve_infer
from rigserve.server.rest.kserve_codec import HEADER_LENGTH

router = APIRouter(prefix="/v2", tags=["kserve-v2"])


@router.get("")
async def server_metadata(request: Request) -> JSONResponse:
    return JSONResponse(get_service(request).server_metadata())


@router.get("/health/live")
async def live() -> Response:
    return Response(status_code=200)


@router.get("/health/ready")
async def ready(request: Request) -> Response:
    service = request.app.state.service
    if not service.ready:
        raise NotReady("not ready: engines are loading, reloading for the first time, or the "
                       "server is shutting down")
    return Response(status_code=200)


@router.get("/models/stats")
async def all_model_stats(request: Request) -> JSONResponse:
    """Every model's statistics, as Triton answers it (registered before the metadata
    route, which would otherwise take ``stats`` for a model name)."""
    return JSONResponse(get_service(request).model_statistics())


@router.get("/models/{model_name}")
@router.get("/models/{model_name}/versions/{version}")
async def model_metadata(request: Request, model_name: str,
                         version: str | None = None) -> JSONResponse:
    check_version(model_name, version)
    return JSONResponse(get_service(request).model_metadata(model_name))


@router.get("/models/{model_name}/ready")
@router.get("/models/{model_name}/versions/{version}/ready")
async def model_ready(request: Request, model_name: str, version: str | None = None) -> Response:
    check_version(model_name, version)
    service = get_service(request)
    service.catalog.check(model_name)
    return Response(status_code=200 if service.model_ready(model_name) else 503)


@router.get("/models/{model_name}/config")
@router.get("/models/{model_name}/versions/{version}/config")
async def model_config(request: Request, model_name: str,
                       version: str | None = None) -> JSONResponse:
    check_version(model_name, version)
    return JSONResponse(get_service(request).model_config(model_name))


@router.get("/models/{model_name}/stats")
@router.get("/models/{model_name}/versions/{version}/stats")
async def model_stats(request: Request, model_name: str,
                      version: str | None = None) -> JSONResponse:
    check_version(model_name, version)
    return JSONResponse(get_service(request).model_statistics(model_name))


async def infer(request: Request) -> Response:
    """KServe v2 infer for requests that reach FastAPI; :class:`RigserveApp` answers the
    usual ones first (``fast_infer``), with the same :func:`kserve_infer`."""
    content, headers = await kserve_infer(
        get_service(request), request.path_params["model_name"],
        request.path_params.get("version"), await request.body(),
        content_encoding=request.headers.get("content-encoding"),
        header_length=request.headers.get(HEADER_LENGTH))
    return Response(content, headers=headers)


# A plain Starlette route: no dependency solving or parameter validation to pay for.
for _path in ("/models/{model_name}/infer", "/models/{model_name}/versions/{version}/infer"):
    router.add_route(router.prefix + _path, infer, methods=["POST"], include_in_schema=False)


@router.post("/repository/index")
async def repository_index(request: Request) -> JSONResponse:
    service = get_service(request)
    state = "READY" if service.ready else "UNAVAILABLE"
    return JSONResponse([{"name": n, "version": VERSION, "state": state}
                         for n in sorted(service.catalog.names)])


def _refuse_load_overrides(body: bytes) -> None:
    """Triton loads with a ``config`` JSON and ``file:<path>`` contents in place of the
    repository's (and refuses parameters it does not know); rigserve cannot, and
    reloading as exported instead would answer success for a load that ignored them."""
    if not body.strip():
        return
    try:
        parsed: Any = jsonio.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"load request JSON is not valid: {exc}") from exc
    params = parsed.get("parameters") if isinstance(parsed, dict) else None
    if not isinstance(parsed, dict) or not isinstance(params, dict | None):
        raise InvalidInput("a load request body must be a JSON object, with an optional "
                           "'parameters' object")
    if params:
        raise InvalidInput(extensions.load_overrides(sorted(params)))


@router.post("/repository/models/{model_name}/load")
async def repository_load(request: Request, model_name: str) -> JSONResponse:
    """Reload the repository from disk and swap every engine atomically."""
    _refuse_load_overrides(await request.body())
    await get_service(request).load_model(model_name)
    return JSONResponse({})


@router.post("/repository/models/{model_name}/unload")
async def repository_unload(request: Request, model_name: str) -> JSONResponse:
    get_service(request).catalog.check(model_name)
    raise InvalidInput(extensions.unload(extensions.HTTP))


def _unsupported(message: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(_request: Request) -> Response:
        raise InvalidInput(message)

    return endpoint


# tritonclient's shared-memory, trace and log calls, by path (GET reads, POST writes).
_TRACE = extensions.trace_settings(extensions.HTTP)
for _path, _message in (
        ("/systemsharedmemory/{rest:path}", extensions.shared_memory(extensions.HTTP, "system")),
        ("/cudasharedmemory/{rest:path}", extensions.shared_memory(extensions.HTTP, "CUDA")),
        ("/trace/setting", _TRACE), ("/models/{model_name}/trace/setting", _TRACE),
        ("/logging", extensions.LOG_SETTINGS)):
    router.add_route(router.prefix + _path, _unsupported(_message), methods=["GET", "POST"],
                     include_in_schema=False)
