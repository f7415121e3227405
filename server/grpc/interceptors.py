"""The gRPC error boundary and API-key check (style.md §6: errors at one boundary).

:class:`ErrorInterceptor` is the only place that turns exceptions into gRPC status
codes: the server's ``ServerError`` hierarchy carries its own code name
(``rigserve.server.errors``), sensor errors are the client's mistake, and the few
non-rigserve exceptions a handler can raise are in :data:`EXTRA_CODES`. Anything else
is a bug: logged with its traceback and answered INTERNAL.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from rigserve.server.errors import Overloaded, Unauthenticated, grpc_code_of

logger = logging.getLogger(__name__)

#: Exceptions outside rigserve's hierarchy that still mean something specific.
EXTRA_CODES: dict[type[BaseException], grpc.StatusCode] = {
    asyncio.TimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    NotImplementedError: grpc.StatusCode.UNIMPLEMENTED,
}

#: Methods that never need an API key: probes from orchestrators carry none.
AUTH_EXEMPT_PREFIXES: tuple[str, ...] = (
    "/grpc.health.v1.Health/",
    "/inference.GRPCInferenceService/ServerLive",
    "/inference.GRPCInferenceService/ServerReady",
)

Behavior = Callable[..., Any]

#: The most UTF-8 bytes of an error message sent as a status's details. Details travel
#: percent-encoded (up to three characters a byte) in the trailers, and a client drops a
#: call whose metadata passes its limit (grpc's defaults: 8 KiB soft, 16 KiB hard) as
#: RESOURCE_EXHAUSTED, losing the real status: a message echoing a client's 100 kB model
#: name, or thousands of input names, must be cut.
MAX_DETAILS_BYTES = 2048


def status_of(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status code an exception is answered with."""
    for kind, code in EXTRA_CODES.items():
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode[grpc_code_of(exc)]


def _bounded(message: str) -> str:
    data = message.encode()
    if len(data) <= MAX_DETAILS_BYTES:
        return message
    head = data[:MAX_DETAILS_BYTES].decode(errors="ignore")  # never half a character
    return f"{head} ... [{len(data) - len(head.encode())} more bytes cut]"


def _trailers(exc: BaseException) -> tuple[tuple[str, str], ...]:
    if isinstance(exc, Overloaded):
        return (("retry-after", str(max(1, round(exc.retry_after_s)))),)
    return ()


async def _abort(context: grpc.aio.ServicerContext, exc: Exception, method: str) -> None:
    code = status_of(exc)
    if code == grpc.StatusCode.INTERNAL:
        logger.error("%s failed", method, exc_info=exc)
        message = f"internal error ({type(exc).__name__}): {exc}"
    else:
        message = str(exc) or type(exc).__name__
    await context.abort(code, _bounded(message), trailing_metadata=_trailers(exc))


def _wrap(handler: grpc.RpcMethodHandler, method: str,
          before: Callable[[grpc.aio.ServicerContext], None]) -> grpc.RpcMethodHandler:
    """The same handler with ``before`` run first and exceptions mapped to status codes."""
    if handler.request_streaming and handler.response_streaming:
        behavior, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        behavior, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        behavior, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        behavior, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler

    if handler.response_streaming:
        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                before(context)
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for response in result:
                        yield response
                else:  # a handler writing with context.write() returns a coroutine
                    await result
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, method)
        wrapped: Behavior = streaming
    else:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                before(context)
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, method)
        wrapped = unary
    return factory(wrapped, request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)


def _no_check(_context: grpc.aio.ServicerContext) -> None:
    return None


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Maps exceptions from every handler to status codes; checks API keys when set."""

    def __init__(self, api_keys: Sequence[str] = ()) -> None:
        self._keys = [k.encode() for k in api_keys]
        # method -> its wrapped handler: the servicers' handlers are fixed for the
        # server's lifetime, so each is wrapped once, not on every call.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails],
                                     Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            exempt = not self._keys or method.startswith(AUTH_EXEMPT_PREFIXES)
            wrapped = _wrap(handler, method, _no_check if exempt else self._authenticate)
            self._wrapped[method] = wrapped
        return wrapped

    def _authenticate(self, context: grpc.aio.ServicerContext) -> None:
        """Accept ``authorization: Bearer KEY`` or ``x-api-key: KEY`` metadata."""
        sent = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and value.lower().startswith("bearer "):
                sent = value[7:].strip()
            elif key == "x-api-key":
                sent = value.strip()
        if sent is None:
            raise Unauthenticated("an API key is required: send metadata "
                                  "'authorization: Bearer KEY' or 'x-api-key: KEY'")
        # Compare against every key in constant time: no early exit leaks which matched.
        matched = [hmac.compare_digest(sent.encode(), k) for k in self._keys]
        if not any(matched):
            raise Unauthenticated("the API key sent is not one of the server's keys")
