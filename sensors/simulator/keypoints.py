"""2-D keypoints of the RGB and the two infrared cameras (17 x 2, COCO order, pixels).

MM-Fi stores the output of a 2-D pose detector for the camera streams; here the body's
joints are converted to COCO's 17 keypoints (face points placed on the head from the
body's facing direction) and projected through each camera (640 x 480 pinholes on the
depth camera's mount, the infrared pair 5 cm apart), with a detector's pixel noise.
"""

from __future__ import annotations

import functools

import numpy as np

from .body import JOINT
from .depth import NATIVE_FOCAL_PX, NATIVE_SIZE
from .render import RenderContext, Rendered, register_renderer

#: camera -> lateral offset (m) from the depth camera along the rig's x axis
CAMERA_OFFSETS = {"rgb": 0.015, "infra1": 0.0, "infra2": 0.05}
DETECTOR_NOISE_PX = 1.5

# COCO keypoints 5..16 are body joints: (left/right shoulder, elbow, wrist, hip, knee, ankle).
_COCO_BODY = [JOINT[f"{side}_{part}"]
              for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
              for side in ("left", "right")]


def coco_keypoints(joints: np.ndarray) -> np.ndarray:
    """Human3.6M joints (17, 3) -> COCO keypoints (17, 3) in the same frame."""
    right = joints[JOINT["right_hip"]] - joints[JOINT["left_hip"]]
    up = joints[JOINT["head"]] - joints[JOINT["neck"]]
    scale = np.linalg.norm(up)
    up /= scale
    forward = np.cross(up, right)
    forward /= np.linalg.norm(forward)
    side = np.cross(forward, up)  # unit vector to the subject's right
    centre = (joints[JOINT["neck"]] + joints[JOINT["head"]]) / 2
    nose = centre + forward * 1.1 * scale
    eyes, ears = nose + up * 0.35 * scale, centre + up * 0.2 * scale
    # COCO: nose, left eye, right eye, left ear, right ear (`side` points to the right).
    face = [nose, eyes - side * 0.4 * scale, eyes + side * 0.4 * scale,
            ears - side * 0.9 * scale, ears + side * 0.9 * scale]
    return np.concatenate([np.stack(face), joints[_COCO_BODY]])


class KeypointCamera:
    def __init__(self, ctx: RenderContext, offset: float) -> None:
        self.seq = ctx.sequence
        mount = self.seq.env.depth
        self.rot = mount.rotation()
        self.origin = mount.origin + self.rot[:, 0] * offset
        self.cx, self.cy = (NATIVE_SIZE[1] - 1) / 2, (NATIVE_SIZE[0] - 1) / 2

    def __call__(self, index: int, rng: np.random.Generator) -> Rendered:
        local = (coco_keypoints(self.seq.joints[index]) - self.origin) @ self.rot  # (17, 3)
        ahead = np.maximum(local[:, 1], 1e-3)
        uv = np.column_stack([self.cx + NATIVE_FOCAL_PX * local[:, 0] / ahead,
                              self.cy - NATIVE_FOCAL_PX * local[:, 2] / ahead])
        return Rendered(uv + rng.normal(0.0, DETECTOR_NOISE_PX, uv.shape))


for _name, _offset in CAMERA_OFFSETS.items():
    register_renderer(_name)(functools.partial(KeypointCamera, offset=_offset))
