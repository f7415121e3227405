"""Build the gRPC server: servicers, health, reflection, the error boundary, TLS, limits.

``create_grpc_server(service, settings)`` returns a bound but not started
``grpc.aio.Server``; the app's lifespan starts it on uvicorn's event loop and stops it
with :func:`stop_grpc_server`, which turns health NOT_SERVING before draining.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from rigserve.proto import (
    grpc_service_pb2,
    grpc_service_pb2_grpc,
    rig_stream_pb2,
    rig_stream_pb2_grpc,
)
from rigserve.server.grpc.health import ReadinessHealth
from rigserve.server.grpc.inference import InferenceServicer
from rigserve.server.grpc.interceptors import ErrorInterceptor
from rigserve.server.grpc.rig_stream import RigStreamServicer, StreamOptions, options_from
from rigserve.server.service import InferenceService

logger = logging.getLogger(__name__)

SERVICE_NAMES: tuple[str, ...] = (
    grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
    rig_stream_pb2.DESCRIPTOR.services_by_name["RigStream"].full_name,
)


@dataclass
class _Handle:
    port: int
    health: ReadinessHealth
    rig_streams: RigStreamServicer
    infer: InferenceServicer


_HANDLES: weakref.WeakKeyDictionary[grpc.aio.Server, _Handle] = weakref.WeakKeyDictionary()


def _credentials(settings: Any) -> grpc.ServerCredentials | None:
    if settings.tls_cert is None:
        return None
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())])


def create_grpc_server(service: InferenceService, settings: Any,
                       stream_options: StreamOptions | None = None) -> grpc.aio.Server:
    """A bound (not started) server for ``service`` on ``settings.host:grpc_port``.

    ``settings`` is :class:`rigserve.server.settings.Settings` (api_keys, tls_cert/key,
    grpc_max_message_bytes, infer_stream_max_inflight, staleness_s, host, grpc_port; port 0
    picks a free one, see :func:`bound_port`). Must be called with the event loop that will
    run it.
    """
    limit = int(settings.grpc_max_message_bytes)
    server = grpc.aio.server(
        interceptors=[ErrorInterceptor(settings.api_keys)],
        options=[("grpc.max_receive_message_length", limit),
                 ("grpc.max_send_message_length", limit),
                 ("grpc.so_reuseport", 0)])
    options = stream_options or options_from(settings)
    # The generated add_* helpers carry no annotations (grpcio-tools writes none).
    infer = InferenceServicer(service, settings.infer_stream_max_inflight)
    grpc_service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        infer, server)
    rig_streams = RigStreamServicer(service, options)
    rig_stream_pb2_grpc.add_RigStreamServicer_to_server(  # type: ignore[no-untyped-call]
        rig_streams, server)
    health = ReadinessHealth(lambda: service.ready, SERVICE_NAMES)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)

    address = f"{settings.host}:{settings.grpc_port}"
    creds = _credentials(settings)
    port = (server.add_secure_port(address, creds) if creds is not None
            else server.add_insecure_port(address))
    if port == 0:
        raise OSError(f"gRPC could not bind {address}")
    _HANDLES[server] = _Handle(port, health, rig_streams, infer)
    logger.info("gRPC on %s:%d (%s, max message %d MiB, %d API keys)", settings.host, port,
                "TLS" if creds else "plaintext", limit >> 20, len(settings.api_keys))
    return server


def bound_port(server: grpc.aio.Server) -> int:
    """The port a server from :func:`create_grpc_server` listens on."""
    return _HANDLES[server].port


def begin_drain(server: grpc.aio.Server) -> None:
    """Shutdown has begun: health answers NOT_SERVING from now on (calls still served)."""
    handle = _HANDLES.get(server)
    if handle is not None:
        handle.health.draining = True


async def stop_grpc_server(server: grpc.aio.Server, grace_s: float) -> None:
    """Report NOT_SERVING, then stop: new RPCs are refused, in-flight ones get ``grace_s``.

    Open rig streams and ModelStreamInfer streams stop reading at once, answer every
    frame or request they read and end UNAVAILABLE (see :meth:`RigStreamServicer.drain`),
    so they do not hold the stop for the whole grace period."""
    begin_drain(server)
    handle = _HANDLES.get(server)
    if handle is not None:
        streams = handle.rig_streams.drain()
        if streams:
            logger.info("draining %d rig stream(s): answering what they sent", streams)
        streams = handle.infer.drain()
        if streams:
            logger.info("draining %d ModelStreamInfer stream(s): answering what they sent",
                        streams)
    await server.stop(grace_s)
