"""Frame validation: is a decoded frame something a model can use?

The server calls :func:`check_frame` on every uploaded frame to decide whether its sensor
is online for the request; readers reuse :func:`shape_matches` / :func:`describe_expected`
so a bad file and a bad in-memory frame are described the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import InvalidFrame
from .specs import VAR, ModalitySpec, get_modality

# Names for the variable axes of each kind when describing an expected shape.
_VAR_AXIS_NAMES: dict[str, tuple[str, ...]] = {
    "image": ("H", "W"),
    "points": ("N",),
    "csi": (),
    "keypoints": (),
}
_KIND_NOUN: dict[str, str] = {
    "image": "depth image",
    "points": "float points",
    "csi": "float CSI amplitudes",
    "keypoints": "float keypoints",
}
# numpy dtype kinds accepted per kind: unsigned, signed, float (never bool/complex/object).
_DTYPE_KINDS: dict[str, str] = {"image": "uif", "points": "fiu", "csi": "fiu", "keypoints": "fiu"}


def expected_shape(spec: ModalitySpec) -> tuple[int, ...]:
    """The shape a frame must have, ``VAR`` for free axes; depth accepts any H x W."""
    if spec.kind == "image":
        return (VAR, VAR)
    return spec.shape


def shape_matches(spec: ModalitySpec, shape: tuple[int, ...]) -> bool:
    want = expected_shape(spec)
    return len(shape) == len(want) and all(w in (VAR, s) for w, s in zip(want, shape, strict=True))


def describe_expected(spec: ModalitySpec) -> str:
    """E.g. ``(N, 3) float points`` or ``(H, W) uint16 depth image in mm``."""
    names = iter(_VAR_AXIS_NAMES[spec.kind])
    axes = [next(names) if s == VAR else str(s) for s in expected_shape(spec)]
    noun = _KIND_NOUN[spec.kind]
    if spec.kind == "image":
        noun = f"{spec.dtype} {noun} in {spec.unit}"
    return f"({', '.join(axes)}) {noun}"


def _fail(spec: ModalitySpec, reason: str, found: str) -> InvalidFrame:
    message = f"{spec.name}: expected {describe_expected(spec)}, got {found}"
    return InvalidFrame(spec.name, reason, message)


def _check_image(spec: ModalitySpec, arr: np.ndarray) -> None:
    if arr.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise _fail(spec, "nonfinite", f"{bad} non-finite of {arr.size} pixels")
    lo, hi = arr.min(), arr.max()
    if lo < 0:
        raise _fail(spec, "dtype", f"negative depth {lo}")
    if hi == 0:
        raise _fail(spec, "flat", "an all-zero image (no depth returns)")
    if lo == hi:
        raise _fail(spec, "flat", f"a flat-lined image (every pixel {hi})")


def _check_points(spec: ModalitySpec, arr: np.ndarray) -> None:
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise _fail(spec, "nonfinite", f"{bad} non-finite of {arr.size} values")
    xyz = arr[:, :3]
    if spec.max_range_m is not None and xyz.size:
        far = float(np.abs(xyz).max())
        if far > spec.max_range_m:
            raise _fail(spec, "range", f"a coordinate of {far:.4g} m (at most "
                        f"{spec.max_range_m:g} m from the sensor on each axis)")
    if not xyz.any():
        raise _fail(spec, "flat", f"{arr.shape[0]} points all at the origin")
    if arr.shape[0] > 1 and not np.ptp(xyz, axis=0).any():
        raise _fail(spec, "flat", f"{arr.shape[0]} identical points (a flat-lined sensor)")


def _check_csi(spec: ModalitySpec, arr: np.ndarray) -> None:
    finite = np.isfinite(arr)
    if not finite.any():
        raise _fail(spec, "nonfinite", f"no finite value among {arr.size}")
    vals = arr[finite]
    if vals.min() == vals.max():
        raise _fail(spec, "flat", f"a flat-lined frame (every finite value {vals.min()})")


def _check_keypoints(spec: ModalitySpec, arr: np.ndarray) -> None:
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise _fail(spec, "nonfinite", f"{bad} non-finite of {arr.size} values")
    if not np.ptp(arr, axis=0).any():
        raise _fail(spec, "flat", "every keypoint at the same place")


#: Value checks per modality kind (shape and dtype are already verified when they run).
_VALUE_CHECKS: dict[str, Callable[[ModalitySpec, np.ndarray], None]] = {
    "image": _check_image,
    "points": _check_points,
    "csi": _check_csi,
    "keypoints": _check_keypoints,
}


def check_shape(modality: str, raw: Any) -> np.ndarray:
    """Cheap structural check (dtype kind and shape); returns ``raw`` as an ndarray."""
    spec = get_modality(modality)
    try:
        arr = np.asarray(raw)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise _fail(spec, "shape", f"an array-like numpy cannot stack ({exc})") from exc
    if arr.dtype.kind not in _DTYPE_KINDS[spec.kind]:
        raise _fail(spec, "dtype", f"dtype {arr.dtype}")
    if not shape_matches(spec, arr.shape):
        raise _fail(spec, "shape", f"shape {arr.shape}")
    return arr


def check_frame(modality: str, raw: Any) -> np.ndarray:
    """Raise :class:`InvalidFrame` unless ``raw`` is a usable raw frame of ``modality``.

    Checks, in order: dtype kind, shape (variable axes free), emptiness, finite values
    (WiFi CSI may hold some inf/NaN, which cleaning repairs, but not only those), points
    within the sensor's physical range, and flat-lined / all-zero content. Returns the
    frame as an ndarray.
    """
    arr = check_shape(modality, raw)
    spec = get_modality(modality)
    if arr.size == 0:
        raise _fail(spec, "empty", f"an empty frame of shape {arr.shape}")
    _VALUE_CHECKS[spec.kind](spec, arr)
    return arr
