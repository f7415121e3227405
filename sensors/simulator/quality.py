"""Sensor quality knobs: one number in [0, 1] per modality (1 = clean, 0 = nearly useless).

Each renderer describes its noise model as a :class:`NoiseRange` per parameter (the
value at quality 1 and at quality 0) and reads it through :meth:`NoiseRange.at`, so
"make the WiFi the noisy sensor" is one number on the command line (``--quality wifi=0.2``).
Defaults follow the real-world ordering of MM-Fi's sensors: LiDAR and depth informative,
mmWave sparser, WiFi weak and noisy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Quality per sensor with a knob (the rendered sensors; keypoints are labels).
DEFAULT_QUALITY: dict[str, float] = {"depth": 0.9, "lidar": 0.9, "mmwave": 0.7, "wifi": 0.5}
SENSOR_NAMES: tuple[str, ...] = tuple(DEFAULT_QUALITY)


@dataclass(frozen=True)
class NoiseRange:
    """A noise parameter's value at quality 1 (``clean``) and at quality 0 (``worst``).

    In between it moves as ``(1 - q) ** power``: 1 is linear; a larger power keeps the
    sensor usable over most of the knob and collapses it near 0 (thermal noise in dB-like
    terms).
    """

    clean: float
    worst: float
    power: float = 1.0

    def at(self, quality: float) -> float:
        return float(self.clean + (1.0 - quality) ** self.power * (self.worst - self.clean))


def resolve_quality(quality: Mapping[str, float] | None = None) -> dict[str, float]:
    """Defaults overridden by ``quality``; raises naming a bad modality or value."""
    out = dict(DEFAULT_QUALITY)
    for name, value in (quality or {}).items():
        if name not in DEFAULT_QUALITY:
            raise ValueError(f"quality: unknown sensor {name!r}; "
                             f"accepted: {', '.join(SENSOR_NAMES)}")
        q = float(value)
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quality: {name}={value!r} is outside [0, 1] "
                             "(1 = clean sensor, 0 = nearly pure noise)")
        out[name] = q
    return out


def parse_quality(text: str) -> dict[str, float]:
    """``"wifi=0.3,mmwave=0.5"`` -> ``{"wifi": 0.3, "mmwave": 0.5}`` (validated)."""
    pairs: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"quality: expected NAME=VALUE like 'wifi=0.3', got {item!r}")
        try:
            pairs[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"quality: {name.strip()}={value!r} is not a number "
                             "in [0, 1]") from None
    resolve_quality(pairs)
    return pairs
