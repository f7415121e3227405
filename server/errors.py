"""The server's exception hierarchy and its one mapping to protocol status codes.

Library code raises these; the REST exception handlers and the gRPC interceptor are the
only places that translate them (style.md §6). Each class carries its HTTP status and
its gRPC status *name* (a string, so this module needs no grpc import); sensors' own
errors map through :func:`from_sensor_error`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rigserve.sensors.errors import SensorError


class ServerError(Exception):
    """Base of every error the server answers to a client on purpose."""

    http_status: ClassVar[int] = 500
    grpc_code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """Extra response headers this error implies (e.g. Retry-After)."""
        return {}


class InvalidInput(ServerError):  # noqa: N818 (names fixed by docs/contracts.md)
    """The request is malformed or a tensor/frame does not fit the model."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


class ModelNotFound(ServerError):  # noqa: N818 (names fixed by docs/contracts.md)
    """The request names a model (or engine) this repository does not have."""

    http_status = 404
    grpc_code = "NOT_FOUND"


class PayloadTooLarge(ServerError):  # noqa: N818 (names fixed by docs/contracts.md)
    """The body or one modality's frame exceeds its configured size limit."""

    http_status = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class Overloaded(ServerError):  # noqa: N818 (names fixed by docs/contracts.md)
    """An engine's queue is full; the client should retry after ``retry_after_s``."""

    http_status = 429
    grpc_code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        # Retry-After takes whole seconds (RFC 9110 §10.2.3); never advertise 0.
        return {"Retry-After": str(max(1, round(self.retry_after_s)))}


class NotReady(ServerError):  # noqa: N818 (names fixed by docs/contracts.md)
    """Engines are still loading/warming, or the server is shutting down."""

    http_status = 503
    grpc_code = "UNAVAILABLE"


class TimedOut(ServerError):  # noqa: N818 (the request's own timeout, not a server fault)
    """The request's ``timeout`` parameter passed before its answer was ready. Triton
    answers UNAVAILABLE "Request timeout expired" (retryable), not DEADLINE_EXCEEDED."""

    http_status = 503
    grpc_code = "UNAVAILABLE"


class Unauthenticated(ServerError):  # noqa: N818 (names fixed by docs/contracts.md)
    """An API key is required and was missing or wrong."""

    http_status = 401
    grpc_code = "UNAUTHENTICATED"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="rigserve"'}


class RepositoryError(ServerError):
    """The model repository cannot be loaded (bad manifest, checksum, missing engine)."""

    http_status = 500
    grpc_code = "INTERNAL"


class LoadFailed(RepositoryError):  # noqa: N818 (Triton's word: "load failed for model")
    """A requested (re)load failed; the engines loaded before keep serving.

    Triton answers a failed ``repository/models/{m}/load`` with 400 / INVALID_ARGUMENT
    (the request named a model or repository that cannot be loaded), not 500: the
    server is healthy. Only a failed load at start-up is the server's own 500.
    """

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


def from_sensor_error(exc: Exception) -> ServerError:
    """Translate a `rigserve.sensors` error (bad frame, bad file, unknown modality).

    All of them are the client's mistake, so they become :class:`InvalidInput`
    (400 / INVALID_ARGUMENT) with the sensor's own message, which already names the
    modality, what was expected and what was found.
    """
    return InvalidInput(str(exc))


def http_status_of(exc: BaseException) -> int:
    """HTTP status for any exception: ServerError's own, 400 for sensor errors, else 500."""
    if isinstance(exc, ServerError):
        return exc.http_status
    if isinstance(exc, SensorError):
        return 400
    return 500


def grpc_code_of(exc: BaseException) -> str:
    """gRPC status name for any exception (see :func:`http_status_of`)."""
    if isinstance(exc, ServerError):
        return exc.grpc_code
    if isinstance(exc, SensorError):
        return "INVALID_ARGUMENT"
    return "INTERNAL"


def some_names(names: Sequence[str], shown: int = 5, width: int = 64) -> str:
    """The first ``shown`` of ``names`` quoted (each cut to ``width`` characters) and how
    many more: an error naming a client's thousand bad names would only be huge."""
    text = ", ".join(repr(n[:width]) for n in names[:shown])
    return f"{text} and {len(names) - shown} more" if len(names) > shown else text
