"""gRPC front end: Triton's ``inference.GRPCInferenceService``, the ``rigserve.v1``
rig stream, grpc.health.v1 and reflection, over the shared :class:`InferenceService`."""

from rigserve.server.grpc.app import (
    begin_drain,
    bound_port,
    create_grpc_server,
    stop_grpc_server,
)
from rigserve.server.grpc.rig_stream import StreamOptions

__all__ = ["StreamOptions", "begin_drain", "bound_port", "create_grpc_server",
           "stop_grpc_server"]
