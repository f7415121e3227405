"""Vectorised ray casting against the body (capsules) and the room (planes and boxes).

All functions take unit ray directions (N, 3) and return the distance along each ray
to the first hit, ``inf`` where there is none. The body is a union of capsules; a
capsule is a cylinder between two sphere caps, so its first hit is the nearest of three
closed-form intersections (Inigo Quilez's capsule formulation, split into its parts).
"""

from __future__ import annotations

import numpy as np

INF = np.inf


def _sphere_hits(d_oc: np.ndarray, c: np.ndarray) -> np.ndarray:
    """First hit of unit rays on spheres: d_oc = dir . (origin - centre), c = |origin -
    centre|^2 - r^2 (both (P,)); t = -d_oc - sqrt(d_oc^2 - c), inf where missed or behind."""
    h = d_oc * d_oc - c
    t = -d_oc - np.sqrt(np.maximum(h, 0.0))
    return np.where((h >= 0) & (t > 0), t, INF)


def ray_capsule_pairs(origin: np.ndarray, dirs: np.ndarray, a: np.ndarray, b: np.ndarray,
                      r: np.ndarray, *, cap: np.ndarray | None = None) -> np.ndarray:
    """Ray i (unit dirs (P, 3) from ``origin`` (3,)) against capsule ``cap[i]`` of the
    capsules a, b (C, 3), r (C,); without ``cap``, against capsule i (C = P).

    Returns the first hit distance t (P,), inf where ray i misses its capsule. With one
    origin, everything but the two dot products of each ray is a per-capsule constant,
    computed once per capsule and gathered (a depth frame has ~300 pairs per capsule).
    """
    ba = b - a                                               # (C, 3)
    oa = origin - a
    baba, baoa, oaoa = (ba * ba).sum(1), (ba * oa).sum(1), (oa * oa).sum(1)
    rr = r * r
    bob = ((oa - ba) ** 2).sum(1) - rr  # |origin - b|^2 - r^2: the far cap's sphere term
    # Infinite cylinder around the axis: k2 t^2 + 2 k1 t + k0 = 0 (|d| = 1); k0 is per capsule.
    k0 = baba * oaoa - baoa * baoa - rr * baba
    if cap is not None:
        ba, oa, baba, baoa, oaoa, rr, bob, k0 = (
            np.take(x, cap, axis=0) for x in (ba, oa, baba, baoa, oaoa, rr, bob, k0))
    bard = np.einsum("ij,ij->i", dirs, ba)
    rdoa = np.einsum("ij,ij->i", dirs, oa)
    k2 = baba - bard * bard
    k1 = baba * rdoa - baoa * bard
    h = k1 * k1 - k2 * k0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_cyl = (-k1 - np.sqrt(np.maximum(h, 0.0))) / k2
    y = baoa + t_cyl * bard  # axial coordinate of the hit, in units of |ba|
    t_cyl = np.where((h >= 0) & (k2 > 1e-12) & (t_cyl > 0) & (y > 0) & (y < baba), t_cyl, INF)
    # Caps: d . (origin - b) = d . oa - d . ba.
    caps = np.minimum(_sphere_hits(rdoa, oaoa - rr), _sphere_hits(rdoa - bard, bob))
    return np.asarray(np.minimum(t_cyl, caps))


def ray_capsules(origin: np.ndarray, dirs: np.ndarray, a: np.ndarray, b: np.ndarray,
                 r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ray (N, 3) against every capsule (C): nearest t (N,) and capsule index (-1: none)."""
    n, c = len(dirs), len(a)
    ray = np.repeat(np.arange(n), c)
    cap = np.tile(np.arange(c), n)
    t_all = ray_capsule_pairs(origin, dirs[ray], a[cap], b[cap], r[cap]).reshape(n, c)
    idx = np.argmin(t_all, axis=1)
    t = t_all[np.arange(n), idx]
    return t, np.where(np.isfinite(t), idx, -1)


def box_pairs(boxes: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (cell, box) pair of integer boxes (C, 4) = row0, row1, col0, col1 (exclusive ends)
    on a grid ``width`` cells wide: flat cell indices (P,) and box indices (P,)."""
    rows = np.maximum(boxes[:, 1] - boxes[:, 0], 0)
    cols = np.maximum(boxes[:, 3] - boxes[:, 2], 0)
    sizes = rows * cols
    box = np.repeat(np.arange(len(boxes)), sizes)
    # Position of each pair inside its own box, then row-major back to grid coordinates.
    within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    w = np.maximum(cols[box], 1)
    return (boxes[box, 0] + within // w) * width + boxes[box, 2] + within % w, box


def first_hits(n: int, rays: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Reduce (ray index, t) pairs to the nearest t per ray: (n,), inf for rays with none."""
    out = np.full(n, INF)
    np.minimum.at(out, rays, t)
    return out


def ray_room(origin: np.ndarray, dirs: np.ndarray,
             room: tuple[float, float, float, float, float, float]) -> np.ndarray:
    """Distance (N,) from an origin inside an axis-aligned room to its walls/floor/ceiling."""
    lo = np.array(room[0::2])
    hi = np.array(room[1::2])
    with np.errstate(divide="ignore", invalid="ignore"):
        # Per axis, the wall the ray runs towards: (N, 3) distances, the nearest wins.
        t = np.where(dirs > 0, (hi - origin) / dirs, np.where(dirs < 0, (lo - origin) / dirs, INF))
    return np.asarray(t.min(axis=1))


def ray_boxes(origin: np.ndarray, dirs: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Slab test: first entry distance (N,) into any of the boxes (K, 6), inf if none."""
    if len(boxes) == 0:
        return np.full(len(dirs), INF)
    near = np.full((len(dirs), len(boxes)), -INF)      # (N, K)
    far = np.full((len(dirs), len(boxes)), INF)
    # One axis at a time: elementwise (N, K) updates are several times faster than
    # reducing an (N, K, 3) array over its short last axis.
    for axis in range(3):
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = (1.0 / dirs[:, axis])[:, None]       # (N, 1)
            t1 = (boxes[:, 2 * axis] - origin[axis]) * inv
            t2 = (boxes[:, 2 * axis + 1] - origin[axis]) * inv
        # fmax/fmin skip the NaN of 0 * inf (a ray parallel to a slab, starting on its plane).
        np.fmax(near, np.minimum(t1, t2), out=near)
        np.fmin(far, np.maximum(t1, t2), out=far)
    hit = (near <= far) & (far > 0) & (near > 0)
    return np.asarray(np.where(hit, near, INF).min(axis=1))


def ray_scene(origin: np.ndarray, dirs: np.ndarray,
              room: tuple[float, float, float, float, float, float], boxes: np.ndarray
              ) -> np.ndarray:
    """The static scene: the nearer of the room shell and the furniture, (N,)."""
    return np.asarray(np.minimum(ray_room(origin, dirs, room), ray_boxes(origin, dirs, boxes)))


def normalize(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.linalg.norm(v, axis=-1, keepdims=True))
