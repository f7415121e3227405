"""A real rigserve gRPC server on a free loopback port, in a thread with its own loop.

Blocking clients (tritonclient.grpc, the edge client) run in the test thread while the
server's asyncio loop runs in the background thread, as it would in `rigserve serve`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from rigserve.server.grpc import StreamOptions, bound_port, create_grpc_server, stop_grpc_server
from rigserve.server.service import InferenceService
from rigserve.server.settings import Settings

T = TypeVar("T")


@dataclass
class LiveGrpc:
    port: int
    service: InferenceService
    server: grpc.aio.Server
    loop: asyncio.AbstractEventLoop

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the server's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def metrics_text(self) -> str:
        """What /metrics serves: the service's registry in Prometheus text format."""
        return self.service.metrics.render().decode()

    def metric(self, name: str, **labels: str) -> float:
        value = self.service.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@contextmanager
def live_grpc(repo: Path, *, start_service: bool = True,
              stream_options: StreamOptions | None = None,
              **settings: Any) -> Iterator[LiveGrpc]:
    """Start service + gRPC server on 127.0.0.1:<free port, or settings' grpc_port>;
    stop both on exit."""
    cfg = Settings(**{"repository": repo, "host": "127.0.0.1", "grpc_port": 0, **settings})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="grpc-test-loop", daemon=True)
    thread.start()

    async def start() -> LiveGrpc:
        service = InferenceService(cfg)
        server = create_grpc_server(service, cfg, stream_options)
        await server.start()
        if start_service:
            await service.start()
        return LiveGrpc(bound_port(server), service, server, loop)

    live = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    try:
        yield live
    finally:
        async def stop() -> None:
            await stop_grpc_server(live.server, 0.5)
            if live.service.ready:
                await live.service.stop()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
