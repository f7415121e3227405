"""Sensor-aware routing (design.md, "Routing"): which sensors are online for a request.

A modality is online when its frame is present, decodes, has the right shape and passes
validity checks (and, on a stream, is not stale). The request goes to the engine of
exactly the online subset; every other modality is dropped with a reason that the
response and the metrics report. Decoding, validation and preprocessing are the
`rigserve.sensors` implementations, the same ones training used.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
from rigserve.sensors.errors import FormatError, InvalidFrame
from rigserve.sensors.formats import decode_frame, encode_frame
from rigserve.sensors.preprocess import PreprocessSpec, preprocess_frame
from rigserve.sensors.specs import SENSOR_MODALITIES, get_modality, parse_subset, subset_name
from rigserve.sensors.validate import check_frame
from rigserve.server.errors import InvalidInput, PayloadTooLarge, some_names

logger = logging.getLogger(__name__)

#: A frame as a client sends it: MM-Fi file bytes, or the decoded raw array.
RawFrame = bytes | bytearray | memoryview | np.ndarray

#: Why a modality was not used. InvalidFrame reasons (shape, dtype, nonfinite, range,
#: flat, empty) pass through unchanged.
ABSENT, STALE, DECODE, NO_ENGINE = "absent", "stale", "decode", "no_engine"
#: A sensor rigserve knows that this repository's engines do not take (a rig with more
#: sensors than its model uses): ignored, reported, never an error.
UNUSED = "unused"


@dataclass
class Route:
    """The routing decision for one request."""

    #: modality -> model-ready float32 frame without batch axis, online modalities only.
    inputs: dict[str, np.ndarray]
    #: modality -> reason, for every repository modality not used, and ``unused`` for a
    #: known sensor the repository's engines do not take.
    dropped: dict[str, str]
    #: modality -> human-readable reason (the sensors' message) for dropped frames.
    messages: dict[str, str] = field(default_factory=dict)

    @property
    def subset(self) -> str:
        """The online subset's name; a finished route has at least one input."""
        return subset_name(list(self.inputs))

    def frame_state(self, modality: str) -> str:
        """Metrics state: present, absent, stale or invalid."""
        reason = self.dropped.get(modality)
        if reason is None:
            return "present"
        return reason if reason in (ABSENT, STALE) else "invalid"


class Router:
    """Routes raw frames to a subset of the repository's modalities."""

    def __init__(self, modalities: Collection[str], subsets: Collection[str],
                 spec: PreprocessSpec, size_limits: Mapping[str, int],
                 weights: Mapping[str, float] | None = None) -> None:
        self.modalities = tuple(sorted(modalities))
        self.subsets = frozenset(subsets)
        self.spec = spec
        self.size_limits = dict(size_limits)
        self.weights = dict(weights or {})

    def check_names(self, frames: Mapping[str, object]) -> None:
        unknown = sorted(set(frames) - set(self.modalities) - set(SENSOR_MODALITIES))
        if unknown:
            raise InvalidInput(f"unknown modality {some_names(unknown)}; this repository accepts "
                               f"{', '.join(self.modalities)}")
        for name, frame in frames.items():
            size = frame.nbytes if isinstance(frame, np.ndarray) else len(frame)  # type: ignore[arg-type]
            limit = self.size_limits.get(name)
            if limit is not None and size > limit:
                raise PayloadTooLarge(f"{name}: frame of {size} bytes exceeds the limit of "
                                      f"{limit} bytes")

    def route(self, frames: Mapping[str, RawFrame], stale: Collection[str] = ()) -> Route:
        """Decode, validate and preprocess; raise InvalidInput when nothing is usable."""
        self.check_names(frames)
        route = Route(inputs={}, dropped={})
        for m in sorted(set(frames) - set(self.modalities)):
            route.dropped[m] = UNUSED
            route.messages[m] = (f"{m}: ignored; this repository's engines take "
                                 f"{', '.join(self.modalities)}")
        for m in self.modalities:
            frame = frames.get(m)
            if frame is None:
                route.dropped[m] = ABSENT
            elif m in stale:
                route.dropped[m] = STALE
                route.messages[m] = f"{m}: no frame within the staleness window"
            else:
                self._admit(route, m, frame)
        self._fit_to_engines(route)
        if not route.inputs:
            raise InvalidInput(self._nothing_usable(route))
        return route

    def warm(self) -> None:
        """Decode, validate and preprocess one synthetic file per modality, so the first
        real request does not pay for lazy imports (Pillow) and for building the
        cached resampling tables (~200 ms otherwise)."""
        rng = np.random.default_rng(0)
        for m in self.modalities:
            spec = get_modality(m)
            shape = tuple(64 if d < 0 else d for d in spec.shape)  # variable axes: any size
            low, high = (500, 4000) if spec.unit == "mm" else (0.1, 3.0)
            raw = rng.uniform(low, high, shape).astype(spec.dtype)
            route = Route(inputs={}, dropped={})
            self._admit(route, m, encode_frame(m, raw))
            if m not in route.inputs:
                logger.warning("warm-up frame for %s was refused: %s", m, route.messages.get(m))

    def _admit(self, route: Route, modality: str, frame: RawFrame) -> None:
        try:
            raw = (frame if isinstance(frame, np.ndarray)
                   else decode_frame(modality, frame, f"<{modality} upload>"))
            raw = check_frame(modality, raw)
            with np.errstate(over="ignore"):  # checked just below, in the client's words
                model_input = preprocess_frame(modality, raw, self.spec)
            if not np.isfinite(model_input).all():
                # Finite raw values past float32's range (a radar doppler of 1e300) overflow
                # the float32 model input to inf, and the engine would answer NaN joints.
                raise InvalidFrame(modality, "nonfinite", (
                    f"{modality}: expected values within float32's range (magnitude at most "
                    f"{float(np.finfo(np.float32).max):.4g}), got {float(np.abs(raw).max()):.4g}"))
            route.inputs[modality] = model_input
        except FormatError as exc:
            route.dropped[modality], route.messages[modality] = DECODE, f"{modality}: {exc}"
        except InvalidFrame as exc:
            route.dropped[modality], route.messages[modality] = exc.reason, str(exc)

    def _fit_to_engines(self, route: Route) -> None:
        """Normally a no-op: a full repository has an engine for every subset.

        A partial repository may lack the online subset; then the best subset it has
        (highest summed purified weight) is used and the rest dropped as ``no_engine``.
        """
        if not route.inputs or route.subset in self.subsets:
            return
        online = set(route.inputs)
        parts = {s: parse_subset(s) for s in self.subsets}
        candidates = [s for s, mods in parts.items() if set(mods) <= online]
        best = max(candidates, default=None,
                   key=lambda s: (sum(self.weights.get(m, 0.0) for m in parts[s]),
                                  len(parts[s]), s))
        keep = set(parts[best]) if best else set()
        for m in sorted(online - keep):
            del route.inputs[m]
            route.dropped[m] = NO_ENGINE
            route.messages[m] = f"{m}: the repository has no engine for this sensor combination"

    def _nothing_usable(self, route: Route) -> str:
        why = "; ".join(route.messages.get(m, f"{m}: {r}") for m, r in route.dropped.items()
                        if r != ABSENT)
        sent = [m for m, r in route.dropped.items() if r != ABSENT]
        if not sent:
            return (f"no sensor frames in the request; send at least one of "
                    f"{', '.join(self.modalities)}")
        return f"no usable sensor frame: {why}"
