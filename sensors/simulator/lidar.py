"""LiDAR: a 32-beam scanner ray cast against the body and the room, cropped to the stage.

Beams form an elevation x azimuth grid (an OS1-32-like head: 32 rings over 45 degrees,
0.35 degree azimuth steps over the 80 degrees facing the room). The driver keeps the
points inside the region of interest around the action zone, above a ground cut, as
human-sensing LiDAR pipelines do; N therefore varies with the pose. Noise: range
Gaussian, per-return dropout, whole-ring dropouts, and spurious returns (dust, multipath).
"""

from __future__ import annotations

import functools

import numpy as np

from .body import capsules
from .environment import Environment
from .geometry import box_pairs, first_hits, ray_capsule_pairs, ray_scene
from .quality import NoiseRange
from .render import RenderContext, Rendered, register_renderer

ELEVATIONS = np.deg2rad(np.linspace(-22.5, 22.5, 32))
AZIMUTHS = np.deg2rad(np.arange(-40.0, 40.0 + 1e-9, 0.35))

RANGE_SIGMA = NoiseRange(0.01, 0.15)     # metres
DROPOUT = NoiseRange(0.02, 0.6)          # probability per return
RING_DROPOUT = NoiseRange(0.0, 0.25)     # probability per ring per frame
SPURIOUS = NoiseRange(0.0, 150.0)        # expected spurious points per frame
_NEAR_ROI_M = 0.3  # static returns this close to the ROI may enter it with noise


def _inside(pts: np.ndarray, roi: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Points (N, 3) inside the box ``roi`` (6,) grown by ``margin``: (N,) bool."""
    inside = (pts >= roi[0::2] - margin) & (pts <= roi[1::2] + margin)       # (N, 3)
    # Column ANDs: reducing over a length-3 axis is much slower than two elementwise ops.
    return np.asarray(inside[:, 0] & inside[:, 1] & inside[:, 2])


@functools.lru_cache(maxsize=8)
def _static_scan(env: Environment) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beam directions (32*A, 3), empty-room ranges (32*A,) and which of those returns lie
    near the region of interest (32*A,): cast once per room, shared read-only."""
    el, az = np.meshgrid(ELEVATIONS, AZIMUTHS, indexing="ij")  # (32, A)
    local = np.stack([np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)], -1)
    origin = env.lidar.origin
    dirs = local.reshape(-1, 3) @ env.lidar.rotation().T  # (32*A, 3) rig frame, unit
    static_t = ray_scene(origin, dirs, env.room, env.furniture_array())
    near = _inside(origin + static_t[:, None] * dirs, np.asarray(env.roi), _NEAR_ROI_M)
    for arr in (dirs, static_t, near):
        arr.flags.writeable = False
    return dirs, static_t, near


class Lidar:
    def __init__(self, ctx: RenderContext) -> None:
        seq = ctx.sequence
        self.seq = seq
        self.origin = seq.env.lidar.origin
        self.rot = seq.env.lidar.rotation()
        self.grid = (len(ELEVATIONS), len(AZIMUTHS))
        self.dirs, self.static_t, self.static_near = _static_scan(seq.env)
        self.roi = np.asarray(seq.env.roi)
        q = ctx.quality_of("lidar")
        self.sigma, self.p_drop = RANGE_SIGMA.at(q), DROPOUT.at(q)
        self.p_ring, self.spurious = RING_DROPOUT.at(q), SPURIOUS.at(q)

    def _returns(self, rays: np.ndarray, t: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Points (N, 3) of the kept returns that fall inside the region of interest."""
        pts = self.origin + t[keep, None] * self.dirs[rays[keep]]
        return np.asarray(pts[_inside(pts, self.roi)])

    def _capsule_boxes(self, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Beam-grid boxes (C, 4) = ring0, ring1, col0, col1 covering each capsule."""
        ends = (np.stack([a, b], axis=1) - self.origin) @ self.rot  # (C, 2, 3) sensor frame
        horiz = np.hypot(ends[..., 0], ends[..., 1])
        az = np.arctan2(ends[..., 0], ends[..., 1])
        el = np.arctan2(ends[..., 2], horiz)
        pad = np.arcsin(np.minimum(r / np.maximum(horiz.min(axis=1), 1e-3), 1.0))
        rows = np.searchsorted(ELEVATIONS, [el.min(1) - pad, el.max(1) + pad])  # (2, C)
        cols = np.searchsorted(AZIMUTHS, [az.min(1) - pad, az.max(1) + pad])
        return np.stack([rows[0], rows[1], cols[0], cols[1]], axis=1)

    def __call__(self, index: int, rng: np.random.Generator) -> Rendered:
        a, b, r = capsules(self.seq.joints[index], self.seq.subject.body)
        ray, cap = box_pairs(self._capsule_boxes(a, b, r), self.grid[1])
        tb = ray_capsule_pairs(self.origin, self.dirs[ray], a, b, r, cap=cap)
        hit = np.isfinite(tb)
        body_t = first_hits(len(self.dirs), ray[hit], tb[hit])
        rays = np.flatnonzero(self.static_near | np.isfinite(body_t))
        t = np.minimum(self.static_t[rays], body_t[rays])
        ring = rays // self.grid[1]
        dead_rings = rng.random(self.grid[0]) < self.p_ring
        keep = (rng.random(rays.size) >= self.p_drop) & ~dead_rings[ring] & np.isfinite(t)
        t = t + rng.standard_normal(t.shape) * self.sigma
        pts = self._returns(rays, t, keep)
        if len(pts) == 0:
            # Dropout took every return: report the frame undropped rather than write an
            # empty .bin (which the reader would skip); with a body on stage this is non-empty.
            pts = self._returns(rays, t, np.isfinite(t))
        n_spur = rng.poisson(self.spurious)
        if n_spur:
            spur = self.roi[0::2] + rng.random((n_spur, 3)) * (self.roi[1::2] - self.roi[0::2])
            pts = np.concatenate([pts, spur])
        return Rendered(pts.astype(np.float64))


register_renderer("lidar")(Lidar)
