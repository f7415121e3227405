"""The modality registry: what each MM-Fi sensor stream is, on disk and in memory.

Facts come from the MM-Fi dataset's official loader (see docs/contracts.md). Specs are
frozen: they are interfaces shared by the simulator, training, export and the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rigserve.registry import Registry

from .errors import UnknownModality

Kind = Literal["image", "points", "csi", "keypoints"]

#: Variable axis marker in shapes (point count N, batch B).
VAR = -1


@dataclass(frozen=True)
class ModalitySpec:
    """One sensor stream as MM-Fi stores it.

    ``shape`` is the raw frame shape with ``VAR`` (-1) for axes that vary per frame;
    ``dtype`` is the raw on-disk dtype; ``unit`` is the unit of the values.
    """

    name: str
    folder: str
    ext: str
    kind: Kind
    shape: tuple[int, ...]
    dtype: str
    unit: str
    description: str
    #: Channel names for point clouds / CSI axes, in storage order.
    channels: tuple[str, ...] = field(default=())
    #: Whether a model can take this modality as input (keypoint streams are labels/aux).
    model_input: bool = True
    #: Point clouds: the largest |x|, |y| or |z| (metres) a point may have. Farther is no
    #: physical return of a sensor on a rig but garbage, and refused as ``range``.
    max_range_m: float | None = None


MODALITIES: Registry[str, ModalitySpec] = Registry("modality")


def register_modality(spec: ModalitySpec) -> ModalitySpec:
    return MODALITIES.add(spec.name, spec)


register_modality(ModalitySpec(
    name="depth", folder="depth", ext=".png", kind="image", shape=(480, 640), dtype="uint16",
    unit="mm", description="16-bit PNG depth image in millimetres, 0 = no return",
))
register_modality(ModalitySpec(
    name="lidar", folder="lidar", ext=".bin", kind="points", shape=(VAR, 3), dtype="float64",
    unit="m", description="raw float64 point cloud, x y z in metres", channels=("x", "y", "z"),
    max_range_m=1000.0,
))
register_modality(ModalitySpec(
    name="mmwave", folder="mmwave", ext=".bin", kind="points", shape=(VAR, 5), dtype="float64",
    unit="m", description="raw float64 radar points: x y z (m), doppler (m/s), intensity",
    channels=("x", "y", "z", "doppler", "intensity"), max_range_m=1000.0,
))
register_modality(ModalitySpec(
    name="wifi", folder="wifi-csi", ext=".mat", kind="csi", shape=(3, 114, 10), dtype="float64",
    unit="amplitude",
    description="MATLAB file, CSIamp (and CSIphase) antennas x subcarriers x packets",
    channels=("antenna", "subcarrier", "packet"),
))
for _kp in ("rgb", "infra1", "infra2"):
    register_modality(ModalitySpec(
        name=_kp, folder=_kp, ext=".npy", kind="keypoints", shape=(17, 2), dtype="float64",
        unit="px", description="2-D keypoints, 17 x 2, COCO order", model_input=False,
    ))

#: The modalities a model can consume, in canonical order.
SENSOR_MODALITIES: tuple[str, ...] = tuple(m for m, s in MODALITIES.items() if s.model_input)


def get_modality(name: str) -> ModalitySpec:
    if name not in MODALITIES:
        raise UnknownModality(name, sorted(MODALITIES))
    return MODALITIES[name]


def subset_name(modalities: tuple[str, ...] | list[str] | frozenset[str]) -> str:
    """Canonical subset name: modality names sorted and joined by '+' (design.md)."""
    if not modalities:
        raise ValueError("a modality subset must not be empty")
    return "+".join(sorted(modalities))


def parse_subset(name: str) -> tuple[str, ...]:
    """Inverse of :func:`subset_name`; validates every part."""
    parts = tuple(sorted(p for p in name.split("+") if p))
    if not parts:
        raise ValueError(f"empty subset name {name!r}")
    for p in parts:
        get_modality(p)
    return parts


def all_subsets(modalities: tuple[str, ...] | list[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset (2^M - 1), each sorted, smallest subsets first."""
    mods = sorted(modalities)
    out = []
    for mask in range(1, 1 << len(mods)):
        out.append(tuple(m for i, m in enumerate(mods) if mask >> i & 1))
    out.sort(key=lambda s: (len(s), s))
    return out


# ---- Skeleton and actions ------------------------------------------------------

#: 17 joints, Human3.6M order as used by MM-Fi's ground truth (metres).
JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck", "head", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)

#: (parent, child) joint index pairs.
BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
    (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
)

#: MM-Fi's 27 actions, A01..A27.
ACTION_NAMES: tuple[str, ...] = (
    "stretching_and_relaxing", "horizontal_chest_expansion", "vertical_chest_expansion",
    "twist_left", "twist_right", "mark_time", "limb_extension_left", "limb_extension_right",
    "lunge_left_front", "lunge_right_front", "limb_extension_both", "squat",
    "raising_hand_left", "raising_hand_right", "lunge_left_side", "lunge_right_side",
    "waving_hand_left", "waving_hand_right", "picking_up_things", "throwing_left",
    "throwing_right", "kicking_left", "kicking_right", "body_extension_left",
    "body_extension_right", "jumping_up", "bowing",
)
NUM_ACTIONS = len(ACTION_NAMES)
ACTION_CODES: tuple[str, ...] = tuple(f"A{i:02d}" for i in range(1, NUM_ACTIONS + 1))

#: Protocols: P1 daily actions, P2 rehabilitation actions, P3 all (MM-Fi paper).
PROTOCOLS: dict[str, tuple[str, ...]] = {
    "p1": tuple(f"A{i:02d}" for i in (2, 3, 4, 5, 13, 14, 17, 18, 19, 20, 21, 22, 23, 27)),
    "p2": tuple(f"A{i:02d}" for i in (1, 6, 7, 8, 9, 10, 11, 12, 15, 16, 24, 25, 26)),
    "p3": ACTION_CODES,
}

ENVIRONMENTS: tuple[str, ...] = ("E01", "E02", "E03", "E04")
SUBJECTS: tuple[str, ...] = tuple(f"S{i:02d}" for i in range(1, 41))


def environment_of(subject: str) -> str:
    """S01-S10 in E01, S11-S20 in E02, S21-S30 in E03, S31-S40 in E04."""
    idx = int(subject[1:])
    if not 1 <= idx <= 40:
        raise ValueError(f"subject {subject!r} outside S01..S40")
    return ENVIRONMENTS[(idx - 1) // 10]
