"""Per-stream sensor liveness: last seen per sensor, a staleness window, transitions.

Sensors on a rig run at different rates (WiFi CSI at 10 Hz next to a 30 Hz depth
camera), so a frame without a sensor does not mean the sensor is gone: its last frame
is held and reused for ``staleness_s``. A sensor absent for longer goes offline and
is reported stale to the router; its next frame brings it back online. Time is the
rig's capture clock, so a replay judges liveness the way the rig saw it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from rigserve.server.errors import InvalidInput

logger = logging.getLogger(__name__)

P = TypeVar("P")
State = Literal["online", "offline"]


@dataclass(frozen=True)
class Transition:
    modality: str
    to: State
    #: Capture time the sensor was last seen at (offline) or is seen again at (online).
    last_seen: float
    reason: str  # "first_seen", "resumed", "stale"


@dataclass
class _Sensor(Generic[P]):
    last_seen: float
    payload: P
    online: bool = True


@dataclass
class Observation(Generic[P]):
    """What one frame means for routing: frames (held ones included), who is stale, what changed."""

    frames: dict[str, P]
    stale: list[str]
    transitions: list[Transition] = field(default_factory=list)


class SensorLiveness(Generic[P]):
    """Liveness of one stream's sensors. ``P`` is whatever payload the stream carries."""

    def __init__(self, staleness_s: float) -> None:
        if staleness_s <= 0:
            raise ValueError(f"staleness window must be positive seconds, got {staleness_s}")
        self.staleness_s = staleness_s
        self._sensors: dict[str, _Sensor[P]] = {}
        self._last_time: float | None = None

    @property
    def online(self) -> list[str]:
        return sorted(m for m, s in self._sensors.items() if s.online)

    def observe(self, time: float, payloads: Mapping[str, P]) -> Observation[P]:
        """Account for a frame captured at ``time`` carrying ``payloads``."""
        # Refused before it is remembered: after inf every later frame would go back in
        # time, and after NaN no comparison would hold (ordering, staleness).
        if not math.isfinite(time):
            raise InvalidInput(f"capture_time {time} is not a finite number of seconds; send "
                               "the capture time, or 0 for the time the frame arrives")
        if self._last_time is not None and time < self._last_time:
            raise InvalidInput(f"capture_time {time} goes back in time (previous frame at "
                               f"{self._last_time}); frames must be sent in capture order")
        self._last_time = time
        obs: Observation[P] = Observation(frames={}, stale=[])
        for modality, payload in payloads.items():
            self._seen(modality, time, payload, obs)
        for modality, sensor in self._sensors.items():
            if modality in payloads:
                continue
            # Held within the window (the sensor runs slower); past it the frame still
            # goes to the router, named stale, so it is reported "stale", not "absent".
            obs.frames[modality] = sensor.payload
            if time - sensor.last_seen <= self.staleness_s:
                continue
            obs.stale.append(modality)
            if sensor.online:
                sensor.online = False
                obs.transitions.append(Transition(modality, "offline", sensor.last_seen, "stale"))
        return obs

    def _seen(self, modality: str, time: float, payload: P, obs: Observation[P]) -> None:
        sensor = self._sensors.get(modality)
        if sensor is None:
            self._sensors[modality] = _Sensor(time, payload)
            obs.transitions.append(Transition(modality, "online", time, "first_seen"))
        else:
            if not sensor.online:
                obs.transitions.append(Transition(modality, "online", time, "resumed"))
            sensor.last_seen, sensor.payload, sensor.online = time, payload, True
        obs.frames[modality] = payload
