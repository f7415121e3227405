"""The app factory: FastAPI app, lifespan, middleware, routes (style.md §7).

The lifespan builds the :class:`InferenceService` (engines loaded and warmed before the
server answers ready), starts the gRPC server beside uvicorn on the same event loop when
a gRPC port is configured, and on shutdown stops gRPC gracefully and drains in-flight
requests. ``SIGHUP`` reloads the repository when signal handlers are installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from rigserve.server.metrics import CONTENT_TYPE, Metrics
from rigserve.server.rest import kserve, rig
from rigserve.server.rest.fast_infer import RigserveApp
from rigserve.server.rest.handlers import install_exception_handlers
from rigserve.server.rest.security import ApiKeyMiddleware, BodyLimitMiddleware
from rigserve.server.service import InferenceService
from rigserve.server.settings import Settings

logger = logging.getLogger(__name__)


async def _start_grpc(service: InferenceService, settings: Settings) -> Any | None:
    if settings.grpc_port is None:
        return None
    from rigserve.server.grpc import bound_port, create_grpc_server

    server = create_grpc_server(service, settings)
    await server.start()
    logger.info("gRPC listening on %s:%s", settings.host, bound_port(server))
    return server


def _on_sighup(service: InferenceService) -> None:
    async def reload() -> None:
        try:
            await service.reload()
        except Exception:
            logger.exception("SIGHUP reload failed; still serving the previous engines")

    logger.info("SIGHUP: reloading the repository")
    asyncio.get_running_loop().create_task(reload())


def _lifespan(settings: Settings, install_signal_handlers: bool) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service: InferenceService = app.state.service
        # gRPC comes up first so its health service answers NOT_SERVING while engines load.
        grpc_server = await _start_grpc(service, settings)
        app.state.grpc_server = grpc_server
        loop = asyncio.get_running_loop()
        try:
            await service.start()
            if install_signal_handlers:
                loop.add_signal_handler(signal.SIGHUP, _on_sighup, service)
            yield
        finally:
            if install_signal_handlers:
                loop.remove_signal_handler(signal.SIGHUP)
            # One drain budget for the whole stop, counted from the signal when the
            # process runner reported it (begin_shutdown): uvicorn has already spent part
            # of it draining HTTP, and the pod's grace period covers the sum.
            deadline = getattr(app.state, "shutdown_deadline", None)
            if deadline is None:
                deadline = time.monotonic() + settings.drain_timeout_s
            if grpc_server is not None:
                from rigserve.server.grpc import stop_grpc_server

                await stop_grpc_server(grpc_server, max(0.0, deadline - time.monotonic()))
            await service.stop(deadline)

    return lifespan


def begin_shutdown(app: FastAPI) -> None:
    """The process was told to stop (SIGTERM / SIGINT; call it from the signal handler's
    thread, the event loop's): start the drain clock and turn gRPC health NOT_SERVING
    now, while uvicorn drains HTTP, instead of after it. Later calls change nothing."""
    if getattr(app.state, "shutdown_deadline", None) is not None:
        return
    app.state.shutdown_deadline = time.monotonic() + app.state.settings.drain_timeout_s
    grpc_server = getattr(app.state, "grpc_server", None)
    if grpc_server is not None:
        from rigserve.server.grpc import begin_drain

        begin_drain(grpc_server)


def create_app(settings: Settings, *, metrics: Metrics | None = None,
               install_signal_handlers: bool = False) -> RigserveApp:
    """Build the app; nothing heavy happens until the lifespan starts."""
    app = RigserveApp(title="rigserve", version="0.1.0",
                      lifespan=_lifespan(settings, install_signal_handlers))
    app.state.settings = settings
    app.state.service = InferenceService(settings, metrics)
    app.install_fast_path(app.state.service, settings)
    install_exception_handlers(app)
    app.include_router(rig.router)
    app.include_router(kserve.router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint(request: Request) -> Response:
        return Response(request.app.state.service.metrics.render(),
                        media_type=CONTENT_TYPE)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return Response(status_code=200)

    # Outermost first: reject oversized bodies before spending a key check on them.
    app.add_middleware(ApiKeyMiddleware, keys=settings.api_keys,
                       exempt=settings.auth_exempt_paths)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    return app
