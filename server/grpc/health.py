"""grpc.health.v1 answered from the service's readiness, not from a status table.

NOT_SERVING until every engine is loaded and warmed, and again from the moment
shutdown starts (``draining``), so a load balancer stops sending before the server
stops answering. Watch polls: readiness changes a few times in a server's life.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from typing_extensions import override

#: HealthCheckResponse.ServingStatus values (a protobuf enum is an int).
Status = int


class ReadinessHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]  # untyped
    """Health of the whole server ("") and of each named service, all the same readiness."""

    def __init__(self, ready: Callable[[], bool], services: Iterable[str],
                 poll_s: float = 0.1) -> None:
        self._ready = ready
        self._services = {"", *services}
        self._poll_s = poll_s
        self.draining = False

    def status(self, service: str) -> Status:
        codes = health_pb2.HealthCheckResponse
        if service not in self._services:
            return int(codes.SERVICE_UNKNOWN)
        serving = self._ready() and not self.draining
        return int(codes.SERVING if serving else codes.NOT_SERVING)

    @override
    async def Check(self, request: health_pb2.HealthCheckRequest,
                    context: grpc.aio.ServicerContext) -> health_pb2.HealthCheckResponse:
        status = self.status(request.service)
        if status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN:
            # The health protocol answers Check for an unknown service with NOT_FOUND.
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"unknown service {request.service!r}; known: "
                                f"{sorted(self._services)}")
        return health_pb2.HealthCheckResponse(status=status)

    @override
    async def Watch(self, request: health_pb2.HealthCheckRequest,
                    context: grpc.aio.ServicerContext,
                    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        last = None
        while True:
            # Read before the status, so a drain that begins while this iteration runs
            # (the yield lets others run) is sent before the call ends.
            draining = self.draining
            status = self.status(request.service)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            if draining:
                # NOT_SERVING is sent and nothing will change again: end the call, so an
                # open Watch does not hold the server's stop for its whole grace period.
                return
            await asyncio.sleep(self._poll_s)
