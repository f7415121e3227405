"""Each simulated sensor measures the simulated body where physics says it should."""

from __future__ import annotations

import numpy as np
import pytest
from rigserve.sensors.simulator import RenderContext, build_renderer, generate_sequence
from rigserve.sensors.simulator.body import capsules
from rigserve.sensors.simulator.geometry import ray_capsule_pairs, ray_capsules
from rigserve.sensors.simulator.keypoints import coco_keypoints
from rigserve.sensors.specs import JOINT_NAMES

CLEAN = {"depth": 1.0, "lidar": 1.0, "mmwave": 1.0, "wifi": 1.0}


@pytest.fixture(scope="module")
def squat_ctx() -> RenderContext:
    return RenderContext(generate_sequence(5, "E03", "S22", "A12", 20), (120, 160), CLEAN)


def _distance_to_body(points: np.ndarray, joints: np.ndarray, ctx: RenderContext) -> np.ndarray:
    """Distance (N,) from each point to the nearest capsule surface of the body."""
    a, b, r = capsules(joints, ctx.sequence.subject.body)
    ab = b - a
    rel = points[:, None] - a                                       # (N, 16, 3)
    s = np.clip((rel * ab).sum(-1) / (ab * ab).sum(-1), 0, 1)
    return (np.linalg.norm(rel - s[..., None] * ab, axis=-1) - r).min(axis=1)


def test_ray_capsule_hits_lie_on_the_capsule_surface() -> None:
    rng = np.random.default_rng(0)
    ahead = np.array([0.0, 5.0, 0.0])
    a, b = rng.normal(size=(5, 3)) + ahead, rng.normal(size=(5, 3)) + ahead
    r = rng.uniform(0.1, 0.4, 5)
    dirs = rng.normal(size=(4000, 3)) * np.array([0.3, 1.0, 0.3]) + ahead / 5
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    origin = np.zeros(3)
    t, idx = ray_capsules(origin, dirs, a, b, r)
    hit = np.isfinite(t)
    assert 200 < hit.sum() < 3800  # some rays hit, some miss
    p = origin + t[hit, None] * dirs[hit]
    ab = (b - a)[idx[hit]]
    s = np.clip(((p - a[idx[hit]]) * ab).sum(1) / (ab * ab).sum(1), 0, 1)
    surface = np.linalg.norm(p - a[idx[hit]] - s[:, None] * ab, axis=1)
    np.testing.assert_allclose(surface, r[idx[hit]], atol=1e-9)
    # A miss really misses: marching along the ray never enters any capsule.
    miss = dirs[~hit][:200]
    steps = np.linspace(0.0, 12.0, 2400)
    for c in range(5):
        pts = steps[None, :, None] * miss[:, None]                  # (200, steps, 3)
        rel, ab_c = pts - a[c], b[c] - a[c]
        s = np.clip((rel @ ab_c) / (ab_c @ ab_c), 0, 1)
        assert (np.linalg.norm(rel - s[..., None] * ab_c, axis=-1) > r[c] - 1e-3).all()
    # The pairwise form agrees with the all-pairs form.
    pair_t = ray_capsule_pairs(origin, dirs[hit], a[idx[hit]], b[idx[hit]], r[idx[hit]])
    np.testing.assert_allclose(pair_t, t[hit])


def test_depth_pixels_of_the_body_measure_its_surface(squat_ctx: RenderContext) -> None:
    cam = build_renderer("depth", squat_ctx)
    rng = np.random.default_rng(0)
    for i in (0, 7, 14):
        depth = cam(i, rng).array.astype(np.float64) / 1000   # (120, 160) metres along the axis
        joints = squat_ctx.sequence.joints[i]
        thorax = joints[JOINT_NAMES.index("thorax")]
        local = (thorax - cam.origin) @ cam.rot               # mount frame: x right, y ahead, z up
        u = round(cam.cx + cam.fx * local[0] / local[1])
        v = round(cam.cy - cam.fy * local[2] / local[1])
        patch = depth[v - 1: v + 2, u - 1: u + 2]
        measured = np.median(patch[patch > 0])
        torso_r = squat_ctx.sequence.subject.body.radii.max()
        # The surface facing the camera: the joint's depth minus about one torso radius.
        assert local[1] - 1.6 * torso_r < measured < local[1] + 0.02


def test_lidar_returns_lie_on_the_body_or_the_room(squat_ctx: RenderContext) -> None:
    lidar = build_renderer("lidar", squat_ctx)
    rng = np.random.default_rng(1)
    for i in (0, 10):
        pts = lidar(i, rng).array
        joints = squat_ctx.sequence.joints[i]
        near_body = np.linalg.norm(pts[:, :2] - joints[0, :2], axis=1) < 0.6
        assert near_body.sum() > 100
        off = np.abs(_distance_to_body(pts[near_body], joints, squat_ctx))
        on_floor = pts[near_body, 2] < 0.06
        assert np.mean((off < 0.04) | on_floor) > 0.95


def test_mmwave_doppler_is_the_radial_velocity_of_the_moving_body(squat_ctx: RenderContext) -> None:
    radar = build_renderer("mmwave", squat_ctx)
    rng = np.random.default_rng(2)
    seq = squat_ctx.sequence
    measured, expected = [], []
    for i in range(2, 18):
        pts = radar(i, rng).array
        joints, vel = seq.joints[i], seq.velocities[i]
        body = np.abs(_distance_to_body(pts[:, :3], joints, squat_ctx)) < 0.3  # not ghosts
        nearest = np.argmin(np.linalg.norm(pts[body, None, :3] - joints, axis=-1), axis=1)
        ray = pts[body, :3] - seq.env.radar.origin
        ray /= np.linalg.norm(ray, axis=1, keepdims=True)
        measured.append(pts[body, 3])
        expected.append((vel[nearest] * ray).sum(1))
    corr = np.corrcoef(np.concatenate(measured), np.concatenate(expected))[0, 1]
    assert corr > 0.7


def test_keypoints_are_the_joints_seen_by_the_camera(squat_ctx: RenderContext) -> None:
    cam = build_renderer("infra1", squat_ctx)
    depth = build_renderer("depth", RenderContext(squat_ctx.sequence, (480, 640), CLEAN))
    kp = cam(3, np.random.default_rng(3)).array
    coco = coco_keypoints(squat_ctx.sequence.joints[3])
    local = (coco - depth.origin) @ depth.rot
    uv = np.column_stack([depth.cx + depth.fx * local[:, 0] / local[:, 1],
                          depth.cy - depth.fy * local[:, 2] / local[:, 1]])
    assert np.abs(kp - uv).max() < 8.0  # detector noise of 1.5 px
    # COCO left shoulder (5) is the subject's left: for a subject facing the rig, image right.
    assert kp[5, 0] > kp[6, 0]


def test_wifi_csi_is_frequency_selective_and_moves_with_the_body() -> None:
    ctx = RenderContext(generate_sequence(0, "E01", "S03", "A26", 12), (120, 160), CLEAN)
    link = build_renderer("wifi", ctx)
    frames = [link(i, np.random.default_rng(i)).array for i in range(12)]
    amp = np.stack([np.where(np.isfinite(f), f, np.nan) for f in frames])  # (12, 3, 114, 10)
    # Frequency-selective multipath: amplitude varies across subcarriers within a packet.
    assert np.nanstd(amp[0, 0, :, 0]) / np.nanmean(amp[0, 0, :, 0]) > 0.05
    # A jumping body changes the channel far beyond the clean radio's noise.
    motion = np.nanstd(amp.mean(axis=-1), axis=0).mean()
    noise = np.nanstd(amp[0], axis=-1).mean()
    assert motion > 2 * noise
