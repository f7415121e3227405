"""Depth camera: a pinhole 16-bit millimetre image of the body (capsules) over the room.

Noise model of an active stereo / structured-light camera: Gaussian depth noise whose
sigma grows with the square of range (``sigma = s0 + s2 * z^2``), missing pixels that
become more frequent with range, and edge artefacts at depth discontinuities (flying
pixels interpolated between foreground and background, or dropped). The empty room is
ray cast once per sequence; each frame only casts the rays inside the body's bounding box.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .body import capsules
from .environment import Environment
from .geometry import box_pairs, first_hits, normalize, ray_capsule_pairs, ray_scene
from .quality import NoiseRange
from .render import RenderContext, Rendered, register_renderer

#: Native MM-Fi depth frame and the focal length (px) of a RealSense-like camera at it.
NATIVE_SIZE = (480, 640)
NATIVE_FOCAL_PX = 580.0
MIN_RANGE_M, MAX_RANGE_M = 0.3, 8.0

SIGMA0 = NoiseRange(0.002, 0.25)        # metres
SIGMA2 = NoiseRange(0.0015, 0.03)       # metres per metre^2
MISSING = NoiseRange(0.005, 0.5)        # probability, at any range
MISSING_FAR = NoiseRange(0.05, 0.3)     # extra probability at MAX_RANGE_M
EDGE = NoiseRange(0.3, 0.9)             # probability an edge pixel is corrupted


@dataclass(frozen=True)
class StaticView:
    """What a camera sees of the empty room: pixel rays and background depth, read-only."""

    cos: np.ndarray         # (H*W,) cosine between each pixel ray and the optical axis
    dirs: np.ndarray        # (H*W, 3) unit pixel rays in the rig frame
    background: np.ndarray  # (H*W,) depth (m) of the room and furniture


@functools.lru_cache(maxsize=8)
def static_view(env: Environment, size: tuple[int, int]) -> StaticView:
    """The room as the depth camera sees it, cast once per room and size: every sequence
    of a room shares it (the cast is ~230 ms at 480x640, more than 60 frames of bodies)."""
    H, W = size
    fx, fy = NATIVE_FOCAL_PX * W / NATIVE_SIZE[1], NATIVE_FOCAL_PX * H / NATIVE_SIZE[0]
    v, u = np.mgrid[0:H, 0:W]
    # Pixel rays in the mount frame (x right, y forward, z up): image y points down.
    rays = np.stack([(u - (W - 1) / 2) / fx, np.ones_like(u, float), -(v - (H - 1) / 2) / fy], -1)
    cos = (1.0 / np.linalg.norm(rays, axis=-1)).ravel()  # depth = t * cos
    dirs = normalize(rays.reshape(-1, 3) @ env.depth.rotation().T)  # (H*W, 3) rig frame
    background = ray_scene(env.depth.origin, dirs, env.room, env.furniture_array()) * cos
    for arr in (cos, dirs, background):
        arr.flags.writeable = False  # shared between sequences
    return StaticView(cos, dirs, background)


class DepthCamera:
    def __init__(self, ctx: RenderContext) -> None:
        H, W = ctx.depth_size
        if H < 8 or W < 8:
            raise ValueError(f"depth size must be at least 8x8, got {H}x{W}")
        seq = ctx.sequence
        self.size = (H, W)
        self.fx = NATIVE_FOCAL_PX * W / NATIVE_SIZE[1]
        self.fy = NATIVE_FOCAL_PX * H / NATIVE_SIZE[0]
        self.cx, self.cy = (W - 1) / 2, (H - 1) / 2
        self.origin = seq.env.depth.origin
        self.rot = seq.env.depth.rotation()
        view = static_view(seq.env, (H, W))
        self.cos, self.dirs, self.background = view.cos, view.dirs, view.background
        self.seq = seq
        q = ctx.quality_of("depth")
        self.s0, self.s2 = SIGMA0.at(q), SIGMA2.at(q)
        self.p_miss, self.p_far, self.p_edge = MISSING.at(q), MISSING_FAR.at(q), EDGE.at(q)

    def _capsule_boxes(self, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Pixel boxes (C, 4) = v0, v1, u0, u1 that contain each capsule's image."""
        ends = (np.stack([a, b], axis=1) - self.origin) @ self.rot  # (C, 2, 3) mount frame
        ahead = np.maximum(ends[..., 1], MIN_RANGE_M)
        u = self.cx + self.fx * ends[..., 0] / ahead
        v = self.cy - self.fy * ends[..., 2] / ahead
        pad = r * max(self.fx, self.fy) / ahead.min(axis=1) + 1.5
        H, W = self.size
        boxes = np.stack([v.min(1) - pad, v.max(1) + pad + 1,
                          u.min(1) - pad, u.max(1) + pad + 1], 1)
        return np.asarray(np.clip(boxes, 0, [H, H, W, W]).astype(np.intp))

    def __call__(self, index: int, rng: np.random.Generator) -> Rendered:
        H, W = self.size
        a, b, r = capsules(self.seq.joints[index], self.seq.subject.body)
        pix, cap = box_pairs(self._capsule_boxes(a, b, r), W)
        t = ray_capsule_pairs(self.origin, self.dirs[pix], a, b, r, cap=cap)
        hit = np.isfinite(t)
        body_z = first_hits(H * W, pix[hit], t[hit] * self.cos[pix[hit]])
        body = body_z < self.background
        z = np.where(body, body_z, self.background).reshape(H, W)
        return Rendered(self._sensor_noise(z, body.reshape(H, W), rng))

    def _sensor_noise(self, z: np.ndarray, body: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
        # float32 from here on: millimetre output needs no more, and it halves the cost.
        z = z.astype(np.float32)
        edges = self._edges(body)
        if edges.any():
            # Flying pixels: the sensor blends foreground and the background behind it.
            fg, bg = z[edges], self.background.reshape(z.shape)[edges].astype(np.float32)
            blend = rng.random(fg.shape, dtype=np.float32)
            corrupt = rng.random(fg.shape, dtype=np.float32) < self.p_edge
            z[edges] = np.where(corrupt, fg + blend * (bg - fg), fg)
        sigma = np.float32(self.s0) + np.float32(self.s2) * z * z
        noisy = z + rng.standard_normal(z.shape, dtype=np.float32) * sigma
        p_missing = self.p_miss + self.p_far * np.minimum(z / MAX_RANGE_M, 1.0) ** 2
        missing = rng.random(z.shape, dtype=np.float32) < p_missing
        missing |= ~((noisy >= MIN_RANGE_M) & (noisy <= MAX_RANGE_M))  # also catches inf/NaN
        mm = np.rint(noisy * np.float32(1000.0))
        mm[missing] = 0
        return np.asarray(mm.astype(np.uint16))  # in range: noisy <= MAX_RANGE_M (8000 mm)

    @staticmethod
    def _edges(mask: np.ndarray) -> np.ndarray:
        """Pixels of ``mask`` with a 4-neighbour outside it (the silhouette outline)."""
        inner = mask.copy()
        inner[1:] &= mask[:-1]
        inner[:-1] &= mask[1:]
        inner[:, 1:] &= mask[:, :-1]
        inner[:, :-1] &= mask[:, 1:]
        return np.asarray(mask & ~inner)


register_renderer("depth")(DepthCamera)
