"""mmWave radar: a sparse point cloud of the moving body with radial (doppler) velocity.

Like a TI IWR6843 with static clutter removal, the radar mostly reports scatterers that
move: candidate reflection points on the body surface facing the radar are detected with
a probability that grows with their radial speed. Detections carry range / azimuth /
elevation noise (elevation resolution is the poorest), doppler ``v . r_hat`` plus noise
and an intensity from the radar equation (SNR ~ RCS / r^4, in dB). Ghosts: multipath
mirror images behind the room's walls and uniform false alarms.
"""

from __future__ import annotations

import numpy as np

from .body import BONE_CHILD, BONE_PARENT
from .quality import NoiseRange
from .render import RenderContext, Rendered, register_renderer

SENSITIVITY = NoiseRange(1.0, 0.45)        # detection probability scale
RANGE_SIGMA = NoiseRange(0.03, 0.25)       # metres
AZ_SIGMA = NoiseRange(0.03, 0.3)           # radians
EL_SIGMA = NoiseRange(0.06, 0.4)           # radians
DOPPLER_SIGMA = NoiseRange(0.03, 0.4)      # m/s
GHOSTS = NoiseRange(2.0, 25.0)             # expected ghost points per frame

STATIC_DETECTION = 0.05  # micro-motion (breathing, sway) of a still body part
SPEED_SCALE = 0.25       # m/s of radial speed at which detection is ~63 % likely
MIN_POINTS = 3           # CFAR always reports the strongest returns
_FRACTIONS = np.array([0.2, 0.5, 0.8])  # scatterers along each bone


class Radar:
    def __init__(self, ctx: RenderContext) -> None:
        seq = ctx.sequence
        self.seq = seq
        self.origin = seq.env.radar.origin
        self.room = np.asarray(seq.env.room)
        body = seq.subject.body
        lengths = body.bone_lengths()
        # Radar cross-section of each scatterer ~ projected area of its bone segment.
        self.rcs = np.repeat(2 * body.radii * lengths / len(_FRACTIONS), len(_FRACTIONS))
        self.radius = np.repeat(body.radii, len(_FRACTIONS))
        q = ctx.quality_of("mmwave")
        self.sens, self.ghosts = SENSITIVITY.at(q), GHOSTS.at(q)
        self.sig = np.array([RANGE_SIGMA.at(q), AZ_SIGMA.at(q), EL_SIGMA.at(q)])
        self.sig_v = DOPPLER_SIGMA.at(q)

    def _scatterers(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Surface points facing the radar (48, 3) and their velocities (48, 3)."""
        j, v = self.seq.joints[index], self.seq.velocities[index]
        f = _FRACTIONS[None, :, None]
        # (16, 3 fractions, 3) -> (48, 3): points along each bone, bone by bone.
        pts = (j[BONE_PARENT][:, None] * (1 - f) + j[BONE_CHILD][:, None] * f).reshape(-1, 3)
        vel = (v[BONE_PARENT][:, None] * (1 - f) + v[BONE_CHILD][:, None] * f).reshape(-1, 3)
        toward = self.origin - pts
        toward /= np.linalg.norm(toward, axis=1, keepdims=True)
        return pts + toward * self.radius[:, None], vel

    def __call__(self, index: int, rng: np.random.Generator) -> Rendered:
        pts, vel = self._scatterers(index)
        rel = pts - self.origin
        rng_m = np.linalg.norm(rel, axis=1)
        v_r = np.einsum("ij,ij->i", vel, rel) / rng_m  # radial velocity, + moving away
        p_det = self.sens * (STATIC_DETECTION + (1 - STATIC_DETECTION)
                             * (1 - np.exp(-np.abs(v_r) / SPEED_SCALE)))
        hit = rng.random(len(pts)) < p_det
        if hit.sum() < MIN_POINTS:
            hit[np.argsort(-np.abs(v_r) - self.rcs)[:MIN_POINTS]] = True
        snr = 10 * np.log10(self.rcs[hit]) - 40 * np.log10(rng_m[hit]) + 60.0
        points = np.column_stack([
            self._measure(rel[hit], rng), v_r[hit] + rng.normal(0, self.sig_v, hit.sum()),
            np.maximum(snr + rng.normal(0, 2.0, hit.sum()), 1.0),
        ])
        return Rendered(np.concatenate([points, self._ghosts(points, rng)]))

    def _measure(self, rel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Positions seen through the radar's range/azimuth/elevation resolution (N, 3)."""
        r = np.linalg.norm(rel, axis=1)
        az = np.arctan2(rel[:, 0], rel[:, 1])
        el = np.arcsin(np.clip(rel[:, 2] / r, -1, 1))
        r, az, el = (x + rng.standard_normal(len(r)) * s for x, s in zip((r, az, el), self.sig,
                                                                         strict=True))
        local = np.column_stack([r * np.cos(el) * np.sin(az), r * np.cos(el) * np.cos(az),
                                 r * np.sin(el)])
        return np.asarray(self.origin + local)

    def _ghosts(self, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = rng.poisson(self.ghosts)
        out = np.empty((n, 5))
        mirror = rng.random(n) < 0.5
        # Multipath: a real detection reflected by a side or back wall appears behind it.
        src = points[rng.integers(0, len(points), n)]
        axis = rng.choice([0, 0, 1], n)  # x walls twice as likely as the back wall
        side_wall = np.where(src[:, 0] > 0, self.room[1], self.room[0])
        wall = np.where(axis == 0, side_wall, self.room[3])
        img = src.copy()
        img[np.arange(n), axis] = 2 * wall - src[np.arange(n), axis]
        img[:, 4] = src[:, 4] - 6.0
        # False alarms: anywhere in the field of view, noise-like doppler, weak.
        r = rng.uniform(0.5, 6.0, n)
        az, el = rng.uniform(-1.0, 1.0, n), rng.uniform(-0.25, 0.25, n)
        fa = np.column_stack([r * np.cos(el) * np.sin(az), r * np.cos(el) * np.cos(az),
                              r * np.sin(el)]) + self.origin
        noise = np.column_stack([fa, rng.normal(0, 0.5, n), rng.uniform(1.0, 8.0, n)])
        out[:] = np.where(mirror[:, None], img, noise)
        out[:, 4] = np.maximum(out[:, 4], 1.0)
        return out


register_renderer("mmwave")(Radar)
