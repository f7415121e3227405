"""API keys and the body size limit, as pure ASGI middleware (no per-request task overhead).

Keys arrive as ``Authorization: Bearer KEY`` or ``x-api-key: KEY`` and are compared in
constant time; paths under an exempt prefix (health, metrics by default) need none. The
body limit refuses a too-large ``Content-Length`` up front and also counts streamed
(chunked) bodies, raising :class:`PayloadTooLarge` the moment the limit is crossed.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence

from rigserve.server.errors import PayloadTooLarge, ServerError, Unauthenticated
from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def _send_error(send: Send, exc: ServerError) -> None:
    body = json.dumps({"error": exc.message}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers().items()]
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return str(v.decode("latin-1"))
    return None


class ApiKeyMiddleware:
    """401 unless a configured key is presented (when any key is configured)."""

    def __init__(self, app: ASGIApp, keys: Sequence[str], exempt: Sequence[str]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys]
        self.exempt = tuple(exempt)

    def _presented(self, scope: Scope) -> str | None:
        auth = _header(scope, b"authorization")
        if auth and auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return _header(scope, b"x-api-key")

    def _allowed(self, key: str | None) -> bool:
        if key is None:
            return False
        given = key.encode()
        # Check every key (no early exit) so timing does not reveal which one matched.
        return any([hmac.compare_digest(given, k) for k in self.keys])  # noqa: C419

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or not self.keys
                or scope["path"].startswith(self.exempt)):
            await self.app(scope, receive, send)
            return
        key = self._presented(scope)
        if not self._allowed(key):
            what = "missing" if key is None else "not valid"
            await _send_error(send, Unauthenticated(
                f"API key {what}: send 'Authorization: Bearer KEY' or 'x-api-key: KEY'"))
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _too_large(self, size: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body of {size} bytes exceeds the limit of "
                               f"{self.limit} bytes (RIGSERVE_MAX_BODY_BYTES)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_error(send, self._too_large(int(declared)))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise self._too_large(seen)
            return message

        await self.app(scope, counted, send)
