"""``inference.GRPCInferenceService``: the KServe v2 / Triton gRPC protocol.

Thin translation between protobuf messages and :class:`InferenceService`; the router,
batcher and metrics are the ones REST uses. Repository control is index and load (load =
atomic reload of the whole repository); statistics are Triton's (perf_analyzer reads
them). RPCs rigserve does not implement (unload, shared memory, trace/log settings)
answer UNIMPLEMENTED, as Triton answers a feature it lacks, saying what to do instead.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import NoReturn

import grpc
from google.protobuf import json_format
from rigserve.proto import grpc_service_pb2 as pb
from rigserve.proto import grpc_service_pb2_grpc as pb_grpc
from rigserve.proto import model_config_pb2
from rigserve.server import extensions
from rigserve.server.errors import ModelNotFound
from rigserve.server.grpc.interceptors import status_of
from rigserve.server.grpc.queues import OrderedMap, ordered_map
from rigserve.server.grpc.tensors import (
    decode_inputs,
    encode_outputs,
    read_parameters,
    refuse_unsupported,
    requested_outputs,
)
from rigserve.server.model_info import VERSION
from rigserve.server.service import InferenceService
from rigserve.server.tensors import TensorOutputs
from typing_extensions import override

logger = logging.getLogger(__name__)

PROTOCOL = "kserve_grpc"
#: Every model has one version; "" means "the latest".
VERSIONS = ("", VERSION)
#: The response parameter Triton sets on each ModelStreamInfer answer; clients that ask
#: for ``triton_enable_empty_final_response`` read a request's answers until it is true.
#: Every rigserve model answers a request once, so each answer is the final one.
FINAL_RESPONSE = "triton_final_response"
#: How a ModelStreamInfer stream ends when the server shuts down (retryable).
DRAINED = (grpc.StatusCode.UNAVAILABLE,
           "the server is shutting down: every request it read on this stream has been "
           "answered; reconnect (to another instance) to go on")


def _check_repository(name: str) -> None:
    if name:  # Triton's answer too (UNSUPPORTED is UNIMPLEMENTED on gRPC)
        raise NotImplementedError("'repository_name' specification is not supported: "
                                  "rigserve serves one repository; leave it empty")


def _refuse_load_overrides(params: Mapping[str, pb.ModelRepositoryParameter]) -> None:
    """Triton loads with a ``config`` JSON and ``file:<path>`` contents in place of the
    repository's; rigserve cannot, and reloading as exported instead would ignore them.
    It takes no load parameter at all, as REST refuses any."""
    if params:
        raise NotImplementedError(extensions.load_overrides(sorted(params)))


def _check_version(model: str, version: str) -> None:
    if version not in VERSIONS:
        raise ModelNotFound(f"model {model!r} has no version {version!r}; available: {VERSION}")


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, service: InferenceService, stream_inflight: int) -> None:
        """``stream_inflight``: ModelStreamInfer requests of one stream in inference at once
        (``Settings.infer_stream_max_inflight``)."""
        self._service = service
        self._stream_inflight = stream_inflight
        self._streams: set[OrderedMap[pb.ModelInferRequest, pb.ModelStreamInferResponse]] = set()
        self._draining = False

    @override
    async def ServerLive(self, request: pb.ServerLiveRequest,
                         context: grpc.aio.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    @override
    async def ServerReady(self, request: pb.ServerReadyRequest,
                          context: grpc.aio.ServicerContext) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._service.ready)

    @override
    async def ModelReady(self, request: pb.ModelReadyRequest,
                         context: grpc.aio.ServicerContext) -> pb.ModelReadyResponse:
        ready = request.version in VERSIONS and self._service.model_ready(request.name)
        return pb.ModelReadyResponse(ready=ready)

    @override
    async def ServerMetadata(self, request: pb.ServerMetadataRequest,
                             context: grpc.aio.ServicerContext) -> pb.ServerMetadataResponse:
        meta = self._service.server_metadata()
        return pb.ServerMetadataResponse(name=meta["name"], version=meta["version"],
                                         extensions=meta.get("extensions", []))

    @override
    async def ModelMetadata(self, request: pb.ModelMetadataRequest,
                            context: grpc.aio.ServicerContext) -> pb.ModelMetadataResponse:
        _check_version(request.name, request.version)
        meta = self._service.model_metadata(request.name)
        return json_format.ParseDict(meta, pb.ModelMetadataResponse(), ignore_unknown_fields=True)

    @override
    async def ModelConfig(self, request: pb.ModelConfigRequest,
                          context: grpc.aio.ServicerContext) -> pb.ModelConfigResponse:
        _check_version(request.name, request.version)
        config = self._service.model_config(request.name)
        parsed = json_format.ParseDict(config, model_config_pb2.ModelConfig(),
                                       ignore_unknown_fields=True)
        return pb.ModelConfigResponse(config=parsed)

    @override
    async def ModelStatistics(self, request: pb.ModelStatisticsRequest,
                              context: grpc.aio.ServicerContext) -> pb.ModelStatisticsResponse:
        # An empty name asks for every model, as on Triton.
        if request.name:
            _check_version(request.name, request.version)
        stats = self._service.model_statistics(request.name)
        return json_format.ParseDict(stats, pb.ModelStatisticsResponse(),
                                     ignore_unknown_fields=True)

    @override
    async def RepositoryIndex(self, request: pb.RepositoryIndexRequest,
                              context: grpc.aio.ServicerContext) -> pb.RepositoryIndexResponse:
        _check_repository(request.repository_name)
        state = "READY" if self._service.ready else "UNAVAILABLE"
        return pb.RepositoryIndexResponse(models=[
            pb.RepositoryIndexResponse.ModelIndex(name=n, version="1", state=state)
            for n in sorted(self._service.catalog.names)])

    @override
    async def RepositoryModelLoad(self, request: pb.RepositoryModelLoadRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.RepositoryModelLoadResponse:
        _check_repository(request.repository_name)
        _refuse_load_overrides(request.parameters)
        # A failed load answers INVALID_ARGUMENT (LoadFailed), as Triton does.
        await self._service.load_model(request.model_name)
        return pb.RepositoryModelLoadResponse()

    @override
    async def RepositoryModelUnload(self, request: pb.RepositoryModelUnloadRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> pb.RepositoryModelUnloadResponse:
        _check_repository(request.repository_name)
        self._service.catalog.check(request.model_name)
        raise NotImplementedError(extensions.unload(extensions.GRPC))

    # NotImplementedError is UNIMPLEMENTED at the error boundary (interceptors.EXTRA_CODES).
    @override
    async def SystemSharedMemoryStatus(self, request: pb.SystemSharedMemoryStatusRequest,
                                       context: grpc.aio.ServicerContext) -> NoReturn:
        raise NotImplementedError(extensions.shared_memory(extensions.GRPC, "system"))

    @override
    async def SystemSharedMemoryRegister(self, request: pb.SystemSharedMemoryRegisterRequest,
                                         context: grpc.aio.ServicerContext) -> NoReturn:
        raise NotImplementedError(extensions.shared_memory(extensions.GRPC, "system"))

    @override
    async def SystemSharedMemoryUnregister(
            self, request: pb.SystemSharedMemoryUnregisterRequest,
            context: grpc.aio.ServicerContext) -> NoReturn:
        raise NotImplementedError(extensions.shared_memory(extensions.GRPC, "system"))

    @override
    async def CudaSharedMemoryStatus(self, request: pb.CudaSharedMemoryStatusRequest,
                                     context: grpc.aio.ServicerContext) -> NoReturn:
        raise NotImplementedError(extensions.shared_memory(extensions.GRPC, "CUDA"))

    @override
    async def CudaSharedMemoryRegister(self, request: pb.CudaSharedMemoryRegisterRequest,
                                       context: grpc.aio.ServicerContext) -> NoReturn:
        raise NotImplementedError(extensions.shared_memory(extensions.GRPC, "CUDA"))

    @override
    async def CudaSharedMemoryUnregister(self, request: pb.CudaSharedMemoryUnregisterRequest,
                                         context: grpc.aio.ServicerContext) -> NoReturn:
        raise NotImplementedError(extensions.shared_memory(extensions.GRPC, "CUDA"))

    @override
    async def TraceSetting(self, request: pb.TraceSettingRequest,
                           context: grpc.aio.ServicerContext) -> NoReturn:
        raise NotImplementedError(extensions.trace_settings(extensions.GRPC))

    @override
    async def LogSettings(self, request: pb.LogSettingsRequest,
                          context: grpc.aio.ServicerContext) -> NoReturn:
        raise NotImplementedError(extensions.LOG_SETTINGS)

    @override
    async def ModelInfer(self, request: pb.ModelInferRequest,
                         context: grpc.aio.ServicerContext) -> pb.ModelInferResponse:
        return await self._infer(request)

    @override
    async def ModelStreamInfer(self, request_iterator: AsyncIterator[pb.ModelInferRequest],
                               context: grpc.aio.ServicerContext,
                               ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        # Several requests in flight let the batcher batch one stream's requests;
        # answers still leave in request order.
        answers = ordered_map(request_iterator, self._stream_one, self._stream_inflight)
        answers.stopped = self._draining
        self._streams.add(answers)
        try:
            async for answer in answers:
                yield answer
        finally:
            self._streams.discard(answers)
        if answers.stopped:
            await context.abort(*DRAINED)

    def drain(self) -> int:
        """Shutting down: every open ModelStreamInfer stream stops reading, answers the
        requests it read and ends UNAVAILABLE, as rig streams do. Returns how many."""
        self._draining = True
        for answers in self._streams:
            answers.stop_reading()
        return len(self._streams)

    async def _stream_one(self, request: pb.ModelInferRequest) -> pb.ModelStreamInferResponse:
        try:
            response = await self._infer(request)
        except Exception as exc:
            # In-band: the stream stays open for the requests after this one.
            if _is_bug(exc):
                logger.error("stream request %r failed", request.id, exc_info=exc)
            response = pb.ModelInferResponse(model_name=request.model_name,
                                             model_version=request.model_version,
                                             id=request.id)
            response.parameters[FINAL_RESPONSE].bool_param = True
            return pb.ModelStreamInferResponse(error_message=str(exc) or type(exc).__name__,
                                               infer_response=response)
        response.parameters[FINAL_RESPONSE].bool_param = True
        return pb.ModelStreamInferResponse(infer_response=response)

    async def _infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        model = request.model_name
        try:
            _check_version(model, request.model_version)
            params = read_parameters(request.parameters)
            refuse_unsupported(request)
            requested = requested_outputs(request)
            inputs = decode_inputs(request)
        except Exception as exc:
            self._service.record_rejected(PROTOCOL, model, exc)
            raise
        outputs = await self._service.infer_tensors(model, inputs, protocol=PROTOCOL,
                                                    timeout_us=params.get("timeout"))
        # The version that ran, as Triton answers, also when "" asked for the latest.
        response = pb.ModelInferResponse(model_name=model, model_version=VERSION, id=request.id)
        encode_outputs(outputs, response, requested)
        for key, value in _routing_parameters(outputs).items():
            response.parameters[key].string_param = value
        return response


def _routing_parameters(outputs: TensorOutputs) -> dict[str, str]:
    """Which engine and subset answered."""
    return {"engine": outputs.engine, "subset": outputs.subset}


def _is_bug(exc: BaseException) -> bool:
    return bool(status_of(exc) == grpc.StatusCode.INTERNAL)
