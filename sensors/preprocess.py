"""Raw frame -> model input: the one implementation training, export and the server share.

:class:`PreprocessSpec` is recorded in every run's config and in the manifest, so a model is
always fed exactly what it was trained on. Each modality registers a batched function in
:data:`PREPROCESSORS`; single frames go through the same code with a batch of one. Every
step is vectorised: this runs on the server's request path and the dataset's load path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from rigserve.registry import Registry

from .csi import clean_csi
from .specs import get_modality
from .validate import check_shape


@dataclass(frozen=True)
class PreprocessSpec:
    """How raw frames become model inputs (docs/contracts.md, "Preprocessing")."""

    depth_size: tuple[int, int] = (48, 64)
    depth_max_m: float = 6.0
    lidar_points: int = 256
    mmwave_points: int = 64
    wifi_clean: bool = True

    def __post_init__(self) -> None:
        size = tuple(self.depth_size)
        if len(size) != 2 or not all(isinstance(v, int | np.integer) and v > 0 for v in size):
            raise ValueError(
                f"depth_size must be two positive ints (H, W), got {self.depth_size!r}")
        object.__setattr__(self, "depth_size", (int(size[0]), int(size[1])))
        if not self.depth_max_m > 0:
            raise ValueError(f"depth_max_m must be > 0 metres, got {self.depth_max_m!r}")
        for name in ("lidar_points", "mmwave_points"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["depth_size"] = list(self.depth_size)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown preprocessing field(s) {unknown}; accepted: {sorted(known)}")
        kwargs = dict(data)
        if "depth_size" in kwargs:
            kwargs["depth_size"] = tuple(kwargs["depth_size"])
        return cls(**kwargs)


@dataclass(frozen=True)
class Preprocessor:
    """A modality's batched raw -> model-input function and its output shape (no batch)."""

    batch: Callable[[Sequence[np.ndarray], PreprocessSpec], np.ndarray]
    shape: Callable[[PreprocessSpec], tuple[int, ...]]


PREPROCESSORS: Registry[str, Preprocessor] = Registry("preprocessor")


def register_preprocessor(modality: str, preprocessor: Preprocessor) -> None:
    get_modality(modality)
    PREPROCESSORS.add(modality, preprocessor)


# ---- depth: valid-pixel area downsampling ---------------------------------------------------

@functools.lru_cache(maxsize=32)
def _block_matrix(n: int, m: int) -> np.ndarray:
    """(m, n) 0/1 matrix summing n cells into m near-equal blocks (block i starts at i*n//m)."""
    starts = (np.arange(m) * n) // m
    block_of = np.searchsorted(starts, np.arange(n), side="right") - 1  # (n,)
    out: np.ndarray = (block_of[None, :] == np.arange(m)[:, None]).astype(np.float64)
    out.flags.writeable = False
    return out


def _block_sum(x: np.ndarray, out_hw: tuple[int, int], acc: type[np.generic]) -> np.ndarray:
    """Sum (B, H, W) over an (h, w) grid of blocks -> (B, h, w); H >= h, W >= w."""
    B, H, W = x.shape
    h, w = out_hw
    if H % h == 0 and W % w == 0:
        # Rows first while W is contiguous: (B, h, H/h, W) -> (B, h, W) -> (B, h, w, W/w).
        rows = x.reshape(B, h, H // h, W).sum(axis=2, dtype=acc)
        out: np.ndarray = rows.reshape(B, h, w, W // w).sum(axis=3, dtype=acc)
        return out
    # Uneven blocks: R (h, H) @ x (B, H, W) @ C^T (W, w) -> (B, h, w) through BLAS; exact
    # for these integer sums, which stay far below float64's 2^53.
    rows = _block_matrix(H, h) @ x.astype(np.float64)
    return np.asarray(rows @ _block_matrix(W, w).T)


def downsample_depth(images: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """(B, H, W) depth -> (B, h, w) float64: mean of the valid (finite, > 0) pixels per block.

    A block with no valid pixel is 0 (no return), so holes stay holes instead of being
    averaged towards the camera.
    """
    imgs = np.asarray(images)
    h, w = out_hw
    # Smaller than the target: repeat pixels first so every output block has a source.
    rep_h, rep_w = -(-h // imgs.shape[1]), -(-w // imgs.shape[2])
    if rep_h > 1 or rep_w > 1:
        imgs = np.repeat(np.repeat(imgs, rep_h, axis=1), rep_w, axis=2)
    valid = imgs > 0
    if imgs.dtype.kind == "u":
        # Unsigned mm: invalid pixels are exactly the zeros, which add nothing to a sum;
        # uint64 cannot overflow for any block of 16-bit values.
        total = _block_sum(imgs, out_hw, np.uint64)
    else:
        if imgs.dtype.kind == "f":
            valid &= np.isfinite(imgs)
        total = _block_sum(np.where(valid, imgs, 0).astype(np.float64), out_hw, np.float64)
    count = _block_sum(valid.view(np.uint8), out_hw, np.uint32)
    mean: np.ndarray = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return mean


def _depth_batch(frames: Sequence[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    shapes = {f.shape for f in frames}
    if len(shapes) == 1:
        mm = downsample_depth(np.stack(frames), spec.depth_size)
    else:  # mixed camera resolutions: one call per frame, same maths
        mm = np.concatenate([downsample_depth(f[None], spec.depth_size) for f in frames])
    metres: np.ndarray = np.clip(mm * 1e-3, 0.0, spec.depth_max_m)
    return metres[:, None].astype(np.float32)  # (B, 1, h, w)


# ---- point clouds: deterministic resampling with a valid flag -----------------------------

def resample_points(points: np.ndarray, count: int) -> np.ndarray:
    """(N, C) -> (count, C + 1) float32 with a trailing valid flag.

    N > count: evenly strided subsample (index i * N // count), deterministic so training
    and serving see the same points; N <= count: zero-padded rows with flag 0. Non-finite
    rows are dropped first (a lost return carries no position).
    """
    pts = np.asarray(points, dtype=np.float64)
    if not np.isfinite(pts).all():
        pts = pts[np.isfinite(pts).all(axis=1)]
    n, c = pts.shape
    out = np.zeros((count, c + 1), dtype=np.float32)
    if n > count:
        out[:, :c] = pts[(np.arange(count) * n) // count]
        out[:, c] = 1.0
    else:
        out[:n, :c] = pts
        out[:n, c] = 1.0
    return out


def _points_batch(count_of: Callable[[PreprocessSpec], int]
                  ) -> Callable[[Sequence[np.ndarray], PreprocessSpec], np.ndarray]:
    def batch(frames: Sequence[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
        count = count_of(spec)
        return np.stack([resample_points(f, count) for f in frames])  # (B, P, C + 1)

    return batch


# ---- WiFi CSI and keypoints --------------------------------------------------------------

def _wifi_batch(frames: Sequence[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    amp = np.stack(frames)  # (B, 3, 114, 10)
    if spec.wifi_clean:
        return clean_csi(amp)
    return np.asarray(np.nan_to_num(amp, nan=0.0, posinf=0.0, neginf=0.0), dtype=np.float32)


def _keypoints_batch(frames: Sequence[np.ndarray], _spec: PreprocessSpec) -> np.ndarray:
    return np.stack(frames).astype(np.float32)  # (B, 17, 2)


register_preprocessor("depth", Preprocessor(_depth_batch, lambda s: (1, *s.depth_size)))
register_preprocessor("lidar", Preprocessor(_points_batch(lambda s: s.lidar_points),
                                            lambda s: (s.lidar_points, 4)))
register_preprocessor("mmwave", Preprocessor(_points_batch(lambda s: s.mmwave_points),
                                             lambda s: (s.mmwave_points, 6)))
register_preprocessor("wifi", Preprocessor(_wifi_batch, lambda _s: get_modality("wifi").shape))
for _kp in ("rgb", "infra1", "infra2"):
    register_preprocessor(_kp, Preprocessor(_keypoints_batch, lambda _s: (17, 2)))


# ---- public API ---------------------------------------------------------------------------

def _preprocessor(modality: str) -> Preprocessor:
    get_modality(modality)  # UnknownModality for names outside the registry
    return PREPROCESSORS[modality]


def preprocess_frames(modality: str, raws: Sequence[np.ndarray],
                      spec: PreprocessSpec | None = None) -> np.ndarray:
    """Raw frames (each as the reader returns it) -> (B, *model_input_shape) float32."""
    spec = spec or PreprocessSpec()
    pre = _preprocessor(modality)
    if len(raws) == 0:
        return np.zeros((0, *pre.shape(spec)), dtype=np.float32)
    frames = [check_shape(modality, r) for r in raws]
    out: np.ndarray = pre.batch(frames, spec)
    return out


def preprocess_frame(modality: str, raw: np.ndarray,
                     spec: PreprocessSpec | None = None) -> np.ndarray:
    """One raw frame -> model input, float32, no batch axis (docs/contracts.md table)."""
    out: np.ndarray = preprocess_frames(modality, [raw], spec)[0]
    return out


def model_input_shape(modality: str, spec: PreprocessSpec | None = None) -> tuple[int, ...]:
    """Model input shape of ``modality`` without the batch axis."""
    return tuple(_preprocessor(modality).shape(spec or PreprocessSpec()))
