"""The protocol-neutral inference core that REST and gRPC share (docs/contracts.md).

``InferenceService`` owns the loaded repository (one warmed engine per subset, each with
its dynamic batcher), the router, the thread pool and the metrics. A reload builds a
complete new generation off the event loop and swaps it in with one assignment; requests
already holding the old generation finish on it, then it is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from rigserve.sensors.preprocess import PreprocessSpec
from rigserve.server.batcher import BatchResult, DynamicBatcher
from rigserve.server.engines import EngineOptions
from rigserve.server.errors import (
    LoadFailed,
    NotReady,
    ServerError,
    TimedOut,
    grpc_code_of,
    http_status_of,
)
from rigserve.server.metrics import Metrics
from rigserve.server.model_info import VERSION, ModelCatalog
from rigserve.server.repository import Repository, load_repository
from rigserve.server.router import RawFrame, Route, Router
from rigserve.server.settings import Settings
from rigserve.server.statistics import Statistics
from rigserve.server.tensors import TensorOutputs, check_tensors

logger = logging.getLogger(__name__)
T = TypeVar("T")

_GRPC_PROTOCOLS = frozenset({"kserve_grpc", "stream"})


@dataclass(frozen=True)
class RigPrediction:
    """One rig request's answer."""

    joints: np.ndarray  # (17, 3) metres
    action_logits: np.ndarray  # (27,)
    action: str
    action_probs: np.ndarray  # (27,), softmax of the logits
    used: tuple[str, ...]
    dropped: dict[str, str]  # modality -> reason
    engine: str
    subset: str
    #: seconds: route (decode+validate+preprocess), queue, compute, total
    timings: dict[str, float]
    messages: dict[str, str] = field(default_factory=dict)  # modality -> why dropped
    action_labels: tuple[str, ...] = ()  # names of action_probs' entries
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. uncertainty (per row)


@dataclass
class _Generation:
    """One loaded repository with its batchers; counted users let a reload drain it."""

    repo: Repository
    router: Router
    catalog: ModelCatalog
    batchers: dict[str, DynamicBatcher]  # subset -> batcher
    users: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def close(self) -> None:
        while self.users:
            self.idle.clear()
            await self.idle.wait()
        await asyncio.gather(*(b.close() for b in self.batchers.values()))


class InferenceService:
    """Load, route, batch and run; protocol layers call only this."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._gen: _Generation | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._inflight = 0
        self._stopping = False
        self._reload_lock = asyncio.Lock()
        self.stats = Statistics()  # Triton's statistics extension

    # ---- lifecycle -------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._gen is not None and not self._stopping

    @property
    def repository(self) -> Repository:
        return self._current().repo

    @property
    def catalog(self) -> ModelCatalog:
        return self._current().catalog

    async def start(self) -> None:
        """Load and warm every engine; the service is ready when this returns."""
        # Engines run on their batchers' own threads; this pool loads the repository and
        # decodes heavy frames (PNG, big point clouds) off the event loop.
        self._executor = ThreadPoolExecutor(max_workers=max(4, os.cpu_count() or 1),
                                            thread_name_prefix="decode")
        # An engine thread finishing a run needs the GIL back from a busy event loop;
        # with Python's default 5 ms switch interval it can wait that long every batch.
        sys.setswitchinterval(self.settings.gil_switch_interval_us / 1e6)
        self._gen = await self._build()
        self.metrics.ready.set(1)
        logger.info("ready: %d engines from %s", len(self._gen.batchers), self.settings.repository)

    async def stop(self, deadline: float | None = None) -> None:
        """Stop taking requests, drain those in flight until ``deadline`` (a
        ``time.monotonic()`` instant; default drain_timeout_s from now), release."""
        self._stopping = True
        self.metrics.ready.set(0)
        if deadline is None:
            deadline = time.monotonic() + self.settings.drain_timeout_s
        while self._inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._gen is not None:
            await self._gen.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def reload(self) -> None:
        """Load the repository again and swap it in atomically; on failure keep the old.

        Raises :class:`LoadFailed` (400 / INVALID_ARGUMENT, as Triton answers a failed
        load) naming what could not be loaded.
        """
        async with self._reload_lock:
            try:
                new = await self._build()
            except Exception as exc:
                self.metrics.reloads.labels("failure").inc()
                reason = exc.message if isinstance(exc, ServerError) else f"{exc}"
                raise LoadFailed(f"load failed for repository {self.settings.repository}: "
                                 f"{reason}; still serving the previously loaded engines"
                                 ) from exc
            old, self._gen = self._gen, new
            self.metrics.reloads.labels("success").inc()
            logger.info("reloaded %s: %d engines", self.settings.repository, len(new.batchers))
        if old is not None:
            await old.close()

    async def load_model(self, model: str) -> None:
        """Triton's repository ``load`` for ``model``: the repository is served whole, so
        loading any of its models reloads every engine (:meth:`reload`)."""
        known = self._current().catalog.names
        if model not in known:
            # Triton: "failed to load 'm', failed to poll from model repository" -> 400.
            raise LoadFailed(f"failed to load {model!r}: no such model in the repository; "
                             f"models: {', '.join(sorted(known))}")
        await self.reload()

    async def _build(self) -> _Generation:
        s = self.settings
        loop = asyncio.get_running_loop()
        repo = await loop.run_in_executor(self._executor, lambda: load_repository(
            s.repository, precision=s.precision, warmup_runs=s.warmup_runs,
            max_batch=s.max_batch_size,
            options=EngineOptions(s.intra_op_threads, s.inter_op_threads,
                                  s.engine_instances)))
        batchers = {}
        for subset, le in repo.engines.items():
            assert self._executor is not None
            b = DynamicBatcher(le.engine, max_batch=min(s.max_batch_size, le.entry.max_batch),
                               max_delay_s=s.max_queue_delay_s, max_queue=s.max_queue_size,
                               metrics=self.metrics, more_coming=lambda n: self._inflight > n,
                               instances=s.engine_instances,
                               inline_max_s=s.inline_max_ms / 1e3, stats=self.stats)
            b.start()
            batchers[subset] = b
        weights = _mean_weights(repo)
        limits = {m: s.modality_limit(m) for m in repo.manifest.modalities}
        router = Router(repo.manifest.modalities, repo.engines,
                        PreprocessSpec.from_dict(dict(repo.manifest.preprocessing)), limits,
                        weights)
        await loop.run_in_executor(self._executor, router.warm)
        self.metrics.set_engines([
            {"engine": le.name, "subset": sub, "format": le.entry.format,
             "precision": le.entry.precision, "provider": le.engine.provider}
            for sub, le in repo.engines.items()])
        return _Generation(repo, router, ModelCatalog(repo), batchers)

    def _current(self) -> _Generation:
        if self._gen is None or self._stopping:
            raise NotReady("the server is not ready: engines are loading or shutting down")
        return self._gen

    @contextlib.asynccontextmanager
    async def _use(self) -> AsyncIterator[_Generation]:
        gen = self._current()
        gen.users += 1
        try:
            yield gen
        finally:
            gen.users -= 1
            if not gen.users:
                gen.idle.set()

    # ---- request accounting ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def track(self, protocol: str, model: str) -> AsyncIterator[dict[str, Any]]:
        """Count a request: in-flight gauge, duration and code; the body sets ``subset``
        and, once answered, ``result`` (its :class:`BatchResult`, for Triton statistics)."""
        info: dict[str, Any] = {"subset": "none"}
        self._inflight += 1
        self.metrics.inflight.inc()
        t0 = time.perf_counter()
        code = "OK" if protocol in _GRPC_PROTOCOLS else "200"
        try:
            yield info
        except BaseException as exc:
            code = self.code_label(protocol, exc)
            exc.__dict__["_rigserve_counted"] = True
            raise
        finally:
            self._inflight -= 1
            self.metrics.inflight.dec()
            elapsed = time.perf_counter() - t0
            known = model if model in self._models() else "other"
            self.metrics.observe_request(protocol, known, info["subset"], code, elapsed)
            result: BatchResult | None = info.get("result")
            if code in ("200", "OK") and result is not None:
                self.stats.record_success(known, elapsed, result.queue_s, result.times,
                                          next(iter(result.outputs.values())).shape[0])
            else:
                self.stats.record_failure(known, elapsed)

    def record_rejected(self, protocol: str, model: str, exc: BaseException) -> None:
        """Count a request that failed before reaching the service (e.g. unparsable body)."""
        if getattr(exc, "_rigserve_counted", False):
            return
        known = model if model in self._models() else "other"
        self.metrics.observe_request(protocol, known, "none", self.code_label(protocol, exc), 0.0)
        self.stats.record_failure(known, 0.0)

    @staticmethod
    def code_label(protocol: str, exc: BaseException) -> str:
        if protocol in _GRPC_PROTOCOLS:
            # grpc.aio cancels a handler whose caller cancelled or ran out of deadline:
            # the caller's doing, not a server fault to count as INTERNAL.
            if isinstance(exc, asyncio.CancelledError):
                return "CANCELLED"
            return grpc_code_of(exc)
        return str(http_status_of(exc))

    def _models(self) -> Collection[str]:
        return self._gen.catalog.names if self._gen is not None else ()

    # ---- inference -----------------------------------------------------------------------

    async def infer_frames(self, frames: Mapping[str, RawFrame], *, protocol: str,
                           rig_id: str | None = None, stale: Collection[str] = ()) -> RigPrediction:
        """Route raw frames to the online subset's engine and return one prediction."""
        async with self.track(protocol, "rig") as info, self._use() as gen:
            t0 = time.perf_counter()
            route = await self._route(gen, frames, stale)
            t_route = time.perf_counter() - t0
            for m in gen.router.modalities:
                self.metrics.count_frame(m, route.frame_state(m))
            info["subset"] = route.subset
            self.metrics.count_subset(route.subset)
            batcher = gen.batchers[route.subset]
            le = gen.repo.engines[route.subset]
            # (1, ...) per input: the batcher stacks requests along the leading axis.
            inputs = {gen.repo.manifest.modalities[m].input: x[None]
                      for m, x in route.inputs.items()}
            result = info["result"] = await batcher.submit(inputs, "rig")
            if rig_id is not None:
                logger.debug("rig %s -> %s", rig_id, route.subset)
            timings = {"route": t_route, "queue": result.queue_s, "compute": result.compute_s,
                       "total": time.perf_counter() - t0}
            return _prediction(gen, route, le.name, result.outputs, timings)

    def check_frames(self, frames: Mapping[str, RawFrame]) -> None:
        """Refuse frames the router refuses whatever their content: an unknown sensor name
        (InvalidInput) or a frame over its size limit (PayloadTooLarge). A stream calls this
        before it holds a frame for later ones, so one bad frame cannot poison the rest."""
        self._current().router.check_names(frames)

    async def _route(self, gen: _Generation, frames: Mapping[str, RawFrame],
                     stale: Collection[str]) -> Route:
        # Decoding a PNG or resampling a big point cloud takes milliseconds: keep it off
        # the event loop; tiny in-memory frames are cheaper to route inline.
        heavy = sum(len(f) if not isinstance(f, np.ndarray) else f.nbytes
                    for f in frames.values()) > 64 * 1024
        if not heavy:
            return gen.router.route(frames, stale)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, gen.router.route, frames, stale)

    async def infer_tensors(self, model: str, inputs: Mapping[str, np.ndarray], *,
                            protocol: str, timeout_us: int | None = None) -> TensorOutputs:
        """KServe v2 path: model-ready batched tensors for ``rig`` (routes) or ``rig.<subset>``.

        ``timeout_us`` is the request's own ``timeout`` parameter (microseconds, as
        tritonclient sends it; None or 0: none): a request still waiting for its batch
        when it passes fails :class:`TimedOut`, counted as such."""
        async with self.track(protocol, model) as info, self._use() as gen:
            subset = gen.catalog.resolve(model, inputs)
            info["subset"] = subset
            le = gen.repo.engines[subset]
            feed = check_tensors(le, inputs, max_batch=le.entry.max_batch)
            for m in gen.router.modalities:
                present = gen.repo.manifest.modalities[m].input in feed
                self.metrics.count_frame(m, "present" if present else "absent")
            self.metrics.count_subset(subset)
            result = info["result"] = await _within(gen.batchers[subset].submit(feed, model),
                                                    timeout_us)
            return TensorOutputs(result.outputs, engine=le.name, subset=subset)

    # ---- metadata --------------------------------------------------------------------

    def model_metadata(self, model: str) -> dict[str, Any]:
        return self._current().catalog.metadata(model)

    def model_config(self, model: str) -> dict[str, Any]:
        return self._current().catalog.config(model, self.settings)

    def model_statistics(self, model: str = "") -> dict[str, Any]:
        """Triton's statistics extension for ``model``, or every model when it is ""
        (perf_analyzer reads them before and after each measurement window)."""
        catalog = self._current().catalog
        if model:
            catalog.check(model)
        return self.stats.report([model] if model else sorted(catalog.names), VERSION)

    def model_ready(self, model: str) -> bool:
        return self.ready and model in self._models()

    def server_metadata(self) -> dict[str, Any]:
        from rigserve import __version__

        return {"name": "rigserve", "version": __version__,
                "extensions": ["binary_tensor_data", "model_repository", "statistics"]}


async def _within(call: Awaitable[T], timeout_us: int | None) -> T:
    """``call``'s answer, or :class:`TimedOut` once ``timeout_us`` has passed (None or 0:
    no timeout). Triton answers such a request UNAVAILABLE "Request timeout expired"."""
    if not timeout_us:
        return await call
    try:
        return await asyncio.wait_for(call, timeout_us / 1e6)
    except TimeoutError:  # asyncio.TimeoutError is TimeoutError from Python 3.11
        raise TimedOut(f"Request timeout expired: the request's timeout of {timeout_us} µs "
                       "passed before its answer was ready; send a longer timeout or none, "
                       "or retry") from None


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return np.asarray(z / z.sum(axis=-1, keepdims=True))


def _mean_weights(repo: Repository) -> dict[str, float]:
    """Purified modality weights averaged over engines (for the partial-repo fallback)."""
    acc: dict[str, list[float]] = {}
    for le in repo.engines.values():
        for m, w in le.entry.weights.items():
            acc.setdefault(m, []).append(float(w))
    return {m: float(np.mean(v)) for m, v in acc.items()}


def _prediction(gen: _Generation, route: Route, engine: str, out: Mapping[str, np.ndarray],
                timings: dict[str, float]) -> RigPrediction:
    # Outputs are this request's rows: (1, 17, 3) joints, (1, 27) logits.
    logits = np.asarray(out["action_logits"][0], np.float32)  # (27,)
    labels = gen.repo.manifest.outputs["action_logits"].labels
    top = int(np.argmax(logits))
    extra = {k: v[0] for k, v in out.items() if k not in ("joints", "action_logits")}
    return RigPrediction(
        joints=np.asarray(out["joints"][0], np.float32), action_logits=logits,
        action=labels[top] if labels else str(top), action_probs=_softmax(logits),
        used=tuple(sorted(route.inputs)), dropped=dict(route.dropped), engine=engine,
        subset=route.subset, timings=timings, messages=dict(route.messages),
        action_labels=tuple(labels) or tuple(str(i) for i in range(logits.size)), extra=extra)


__all__ = ["InferenceService", "RigPrediction", "ServerError"]
