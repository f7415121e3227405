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
    """Human3.6M joints (..., 17, 3) -> COCO keypoints (..., 17, 3) in the same frame."""
    def joint(name: str) -> np.ndarray:
        return np.asarray(joints[..., JOINT[name], :])                      # (..., 3)

    right = joint("right_hip") - joint("left_hip")
    up = joint("head") - joint("neck")
    scale = np.linalg.norm(up, axis=-1, keepdims=True)                    # (..., 1)
    up = up / scale
    forward = np.cross(up, right)
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    side = np.cross(forward, up)  # unit vector to the subject's right
    centre = (joint("neck") + joint("head")) / 2
    nose = centre + forward * 1.1 * scale
    eyes, ears = nose + up * 0.35 * scale, centre + up * 0.2 * scale
    # COCO: nose, left eye, right eye, left ear, right ear (`side` points to the right).
    face = [nose, eyes - side * 0.4 * scale, eyes + side * 0.4 * scale,
            ears - side * 0.9 * scale, ears + side * 0.9 * scale]
    return np.concatenate([np.stack(face, axis=-2), joints[..., _COCO_BODY, :]], axis=-2)


class KeypointCamera:
    def __init__(self, ctx: RenderContext, offset: float) -> None:
        seq = ctx.sequence
        mount = seq.env.depth
        rot = mount.rotation()
        origin = mount.origin + rot[:, 0] * offset
        cx, cy = (NATIVE_SIZE[1] - 1) / 2, (NATIVE_SIZE[0] - 1) / 2
        # The detector's input is the noise-free projection; project every frame at once.
        local = (coco_keypoints(seq.joints) - origin) @ rot                # (F, 17, 3)
        ahead = np.maximum(local[..., 1], 1e-3)
        self.uv = np.stack([cx + NATIVE_FOCAL_PX * local[..., 0] / ahead,
                            cy - NATIVE_FOCAL_PX * local[..., 2] / ahead], axis=-1)  # (F, 17, 2)

    def __call__(self, index: int, rng: np.random.Generator) -> Rendered:
        uv = self.uv[index]
        return Rendered(uv + rng.normal(0.0, DETECTOR_NOISE_PX, uv.shape))


for _name, _offset in CAMERA_OFFSETS.items():
    register_renderer(_name)(functools.partial(KeypointCamera, offset=_offset))
