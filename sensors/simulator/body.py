"""The simulated body: a 17-joint skeleton (Human3.6M order) driven by forward kinematics.

Body frame: x = the subject's right, y = forward (the way the subject faces), z = up,
metres. Every joint carries a local rotation ``R = Rz(twist) @ Ry(abduct) @ Rx(flex)``
that turns its children; positions follow ``p_child = p_parent + R_parent_global @
offset_child``, so bone lengths are exactly the subject's segment lengths in every
frame. Segment ratios are anthropometric fractions of body height (Drillis & Contini).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..specs import BONES, JOINT_NAMES, NUM_JOINTS

#: parent index of each joint (-1 for the pelvis), from specs.BONES.
PARENTS: tuple[int, ...] = tuple(
    next((p for p, c in BONES if c == j), -1) for j in range(NUM_JOINTS)
)
JOINT = {name: i for i, name in enumerate(JOINT_NAMES)}
#: Parent and child joint index of each bone (16,), in specs.BONES order.
BONE_PARENT = np.array([p for p, _ in BONES], dtype=np.intp)
BONE_CHILD = np.array([c for _, c in BONES], dtype=np.intp)

# Segment groups whose length a subject scales together (limb proportions).
_GROUPS = ("thigh", "shin", "spine", "neck", "upper_arm", "forearm", "hip_width", "shoulder_width")

# Fractions of body height: (group, offset direction in the parent's frame).
_REST: dict[str, tuple[str, tuple[float, float, float], float]] = {
    # joint: (group, unit direction, fraction of height)
    "right_hip": ("hip_width", (1.0, 0.0, -0.35), 0.058),
    "right_knee": ("thigh", (0.0, 0.0, -1.0), 0.245),
    "right_ankle": ("shin", (0.0, 0.0, -1.0), 0.246),
    "left_hip": ("hip_width", (-1.0, 0.0, -0.35), 0.058),
    "left_knee": ("thigh", (0.0, 0.0, -1.0), 0.245),
    "left_ankle": ("shin", (0.0, 0.0, -1.0), 0.246),
    "spine": ("spine", (0.0, 0.0, 1.0), 0.11),
    "thorax": ("spine", (0.0, 0.0, 1.0), 0.15),
    "neck": ("neck", (0.0, 0.02, 1.0), 0.055),
    "head": ("neck", (0.0, 0.05, 1.0), 0.07),
    "left_shoulder": ("shoulder_width", (-1.0, 0.0, -0.1), 0.10),
    "left_elbow": ("upper_arm", (0.0, 0.0, -1.0), 0.186),
    "left_wrist": ("forearm", (0.0, 0.0, -1.0), 0.146),
    "right_shoulder": ("shoulder_width", (1.0, 0.0, -0.1), 0.10),
    "right_elbow": ("upper_arm", (0.0, 0.0, -1.0), 0.186),
    "right_wrist": ("forearm", (0.0, 0.0, -1.0), 0.146),
}

#: Ankle joint height above the floor when standing, fraction of height.
ANKLE_HEIGHT = 0.039

# Capsule radius of each bone (parent, child) as a fraction of height; head is bone 9->10.
_RADIUS = {
    (0, 1): 0.05, (1, 2): 0.042, (2, 3): 0.030, (0, 4): 0.05, (4, 5): 0.042, (5, 6): 0.030,
    (0, 7): 0.075, (7, 8): 0.08, (8, 9): 0.03, (9, 10): 0.055,
    (8, 11): 0.035, (11, 12): 0.026, (12, 13): 0.021,
    (8, 14): 0.035, (14, 15): 0.026, (15, 16): 0.021,
}


@dataclass(frozen=True)
class Body:
    """One subject's skeleton: rest offsets (17, 3) m and capsule radii (16,) m."""

    height: float
    offsets: np.ndarray
    radii: np.ndarray

    @property
    def ankle_height(self) -> float:
        return ANKLE_HEIGHT * self.height

    def bone_lengths(self) -> np.ndarray:
        """(16,) metres, in specs.BONES order."""
        return np.asarray(np.linalg.norm(self.offsets[BONE_CHILD], axis=1))


def make_body(height: float, proportions: dict[str, float] | None = None) -> Body:
    """A body of ``height`` metres; ``proportions`` scales segment groups (1.0 = average)."""
    if not 1.0 <= height <= 2.3:
        raise ValueError(f"body height must be within [1.0, 2.3] m, got {height}")
    scale = dict.fromkeys(_GROUPS, 1.0) | dict(proportions or {})
    unknown = set(scale) - set(_GROUPS)
    if unknown:
        raise ValueError(f"unknown proportion group(s) {sorted(unknown)}; accepted: {_GROUPS}")
    offsets = np.zeros((NUM_JOINTS, 3))
    for name, (group, direction, frac) in _REST.items():
        d = np.asarray(direction) / np.linalg.norm(direction)
        offsets[JOINT[name]] = d * frac * height * scale[group]
    radii = np.array([_RADIUS[b] * height for b in BONES])
    return Body(height=height, offsets=offsets, radii=radii)


def random_body(rng: np.random.Generator) -> Body:
    """A subject drawn from an adult population (height ~ N(1.70, 0.09) m, +-5 % segments)."""
    height = float(np.clip(rng.normal(1.70, 0.09), 1.50, 1.95))
    props = {g: float(np.clip(rng.normal(1.0, 0.04), 0.9, 1.1)) for g in _GROUPS}
    return make_body(height, props)


def rotation_matrices(angles: np.ndarray) -> np.ndarray:
    """(..., 3) Euler angles (flex about x, abduct about y, twist about z) -> (..., 3, 3).

    ``R = Rz @ Ry @ Rx``: flexion first, then abduction, then twist, so "arm forward
    (flex pi/2) then swing it outward (twist)" reads as horizontal abduction.
    """
    cx, cy, cz = np.cos(angles[..., 0]), np.cos(angles[..., 1]), np.cos(angles[..., 2])
    sx, sy, sz = np.sin(angles[..., 0]), np.sin(angles[..., 1]), np.sin(angles[..., 2])
    R = np.empty((*angles.shape[:-1], 3, 3))
    # Closed form of Rz(z) @ Ry(y) @ Rx(x).
    R[..., 0, 0] = cz * cy
    R[..., 0, 1] = cz * sy * sx - sz * cx
    R[..., 0, 2] = cz * sy * cx + sz * sx
    R[..., 1, 0] = sz * cy
    R[..., 1, 1] = sz * sy * sx + cz * cx
    R[..., 1, 2] = sz * sy * cx - cz * sx
    R[..., 2, 0] = -sy
    R[..., 2, 1] = cy * sx
    R[..., 2, 2] = cy * cx
    return R


def forward_kinematics(body: Body, angles: np.ndarray, root_pos: np.ndarray,
                       root_rot: np.ndarray) -> np.ndarray:
    """Joint positions (T, 17, 3) from local angles (T, 17, 3), pelvis (T, 3), root (T, 3, 3)."""
    if angles.ndim != 3 or angles.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"angles: expected (T, {NUM_JOINTS}, 3), got {angles.shape}")
    local = rotation_matrices(angles)  # (T, 17, 3, 3)
    glob = np.empty_like(local)
    pos = np.empty((angles.shape[0], NUM_JOINTS, 3))
    glob[:, 0] = root_rot @ local[:, 0]
    pos[:, 0] = root_pos
    for j in range(1, NUM_JOINTS):  # PARENTS is topologically ordered (parent < child)
        p = PARENTS[j]
        glob[:, j] = glob[:, p] @ local[:, j]
        pos[:, j] = pos[:, p] + glob[:, p] @ body.offsets[j]
    return pos


def capsules(joints: np.ndarray, body: Body) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bone capsules of one frame: endpoints a, b (16, 3) and radii (16,)."""
    return joints[BONE_PARENT], joints[BONE_CHILD], body.radii
