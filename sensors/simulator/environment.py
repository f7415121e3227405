"""The four rooms of the rig (MM-Fi's E01-E04): size, clutter and sensor placement.

Rig frame (the frame of the ground truth and of every point cloud, as after extrinsic
calibration): origin on the floor under the sensor rig, x to the rig's right, y away
from the rig into the room, z up; metres. Rooms are axis-aligned; furniture is a set of
axis-aligned boxes. Sensors differ per room in height, tilt and offset, so each room
sees the body from a slightly different place, as MM-Fi's four setups do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rigserve.registry import Registry

from ..specs import ENVIRONMENTS


@dataclass(frozen=True)
class Mount:
    """A sensor's position (3,) in the rig frame and its yaw / pitch in radians.

    Yaw 0 looks along +y; positive pitch looks up.
    """

    position: tuple[float, float, float]
    yaw: float = 0.0
    pitch: float = 0.0

    @property
    def origin(self) -> np.ndarray:
        return np.asarray(self.position, dtype=np.float64)

    def rotation(self) -> np.ndarray:
        """(3, 3) sensor-to-rig rotation; sensor axes: x right, y forward, z up."""
        cy, sy, cp, sp = np.cos(self.yaw), np.sin(self.yaw), np.cos(self.pitch), np.sin(self.pitch)
        yaw = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
        pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
        return np.asarray(yaw @ pitch)


@dataclass(frozen=True)
class Environment:
    code: str
    #: room bounds: (xmin, xmax, ymin, ymax, zmin=0, zmax=ceiling)
    room: tuple[float, float, float, float, float, float]
    #: furniture boxes (K, 6): xmin, xmax, ymin, ymax, zmin, zmax
    furniture: tuple[tuple[float, float, float, float, float, float], ...]
    depth: Mount
    lidar: Mount
    radar: Mount
    wifi_tx: tuple[float, float, float]
    #: first receive antenna; the 3 antennas sit along x, half a wavelength apart
    wifi_rx: tuple[float, float, float]
    #: where subjects stand: centre (x, y) of the action zone
    stage: tuple[float, float]
    #: LiDAR region of interest (xmin, xmax, ymin, ymax, zmin, zmax): the action zone
    roi: tuple[float, float, float, float, float, float]

    def furniture_array(self) -> np.ndarray:
        return np.asarray(self.furniture, dtype=np.float64).reshape(-1, 6)


ENVIRONMENT_LAYOUTS: Registry[str, Environment] = Registry("environment", error=ValueError)


def register_environment(env: Environment) -> Environment:
    return ENVIRONMENT_LAYOUTS.add(env.code, env)


def get_environment(code: str) -> Environment:
    return ENVIRONMENT_LAYOUTS[code]


def _roi(stage: tuple[float, float]) -> tuple[float, float, float, float, float, float]:
    # 3 m x 2.6 m around the stage, ground plane cut at 2 cm (LiDAR ground removal).
    x, y = stage
    return (x - 1.5, x + 1.5, y - 1.3, y + 1.3, 0.02, 2.4)


def _env(code: str, *, room: tuple[float, float, float, float, float, float],
         furniture: tuple[tuple[float, float, float, float, float, float], ...],
         cam_h: float, tilt: float, lidar_h: float, radar: tuple[float, float, float],
         tx: tuple[float, float, float], rx: tuple[float, float, float],
         stage: tuple[float, float]) -> Environment:
    return register_environment(Environment(
        code=code, room=room, furniture=furniture,
        depth=Mount((0.0, 0.0, cam_h), pitch=tilt),
        lidar=Mount((0.12, 0.0, lidar_h), pitch=tilt / 2),
        radar=Mount(radar, pitch=tilt),
        wifi_tx=tx, wifi_rx=rx, stage=stage, roi=_roi(stage),
    ))


# E01: a lab with desks along the walls; E02: small office, cluttered; E03: wide hall,
# sensors higher; E04: narrow room, rig off-centre, WiFi link across the long side.
_env("E01", room=(-3.0, 3.0, -0.6, 6.5, 0.0, 2.9),
     furniture=((-3.0, -2.2, 1.0, 3.5, 0.0, 0.75), (2.0, 3.0, 4.0, 6.5, 0.0, 1.8),
                (-1.2, 0.4, 5.6, 6.5, 0.0, 0.9)),
     cam_h=1.0, tilt=-0.05, lidar_h=1.15, radar=(-0.12, 0.0, 1.05),
     tx=(-2.5, 3.0, 1.0), rx=(2.5, 3.0, 1.0), stage=(0.0, 3.0))
_env("E02", room=(-2.4, 2.6, -0.5, 5.5, 0.0, 2.7),
     furniture=((-2.4, -1.6, 0.5, 2.0, 0.0, 0.75), (1.7, 2.6, 0.8, 2.6, 0.0, 1.1),
                (-2.4, -1.7, 3.6, 5.5, 0.0, 2.0), (1.0, 2.6, 4.4, 5.5, 0.0, 0.8),
                (1.5, 1.95, 3.2, 3.65, 0.0, 0.9)),
     cam_h=0.9, tilt=0.0, lidar_h=1.05, radar=(-0.12, 0.0, 0.95),
     tx=(-2.0, 2.6, 0.9), rx=(2.2, 2.6, 0.9), stage=(0.1, 2.7))
_env("E03", room=(-4.0, 4.0, -0.8, 8.0, 0.0, 3.4),
     furniture=((-4.0, -3.0, 2.0, 6.0, 0.0, 0.9), (3.2, 4.0, 0.0, 2.0, 0.0, 2.2)),
     cam_h=1.25, tilt=-0.1, lidar_h=1.4, radar=(-0.12, 0.0, 1.3),
     tx=(-3.0, 3.4, 1.2), rx=(3.0, 3.4, 1.2), stage=(0.0, 3.4))
_env("E04", room=(-1.8, 3.2, -0.5, 7.0, 0.0, 2.8),
     furniture=((-1.8, -1.2, 1.0, 4.5, 0.0, 0.8), (2.4, 3.2, 2.0, 3.0, 0.0, 1.2),
                (0.2, 1.6, 6.2, 7.0, 0.0, 1.0)),
     cam_h=1.05, tilt=-0.04, lidar_h=1.2, radar=(0.0, 0.0, 1.2),
     tx=(0.4, 0.3, 1.1), rx=(0.6, 5.8, 1.1), stage=(0.6, 3.1))

if tuple(ENVIRONMENT_LAYOUTS) != ENVIRONMENTS:
    raise RuntimeError(f"environments {tuple(ENVIRONMENT_LAYOUTS)} do not match {ENVIRONMENTS}")
