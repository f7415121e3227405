"""The official MM-Fi WiFi CSI cleaning, vectorised over any leading batch axes.

MM-Fi's loader repairs a CSI amplitude frame (antennas x subcarriers x packets) in three
steps: inf -> NaN; each NaN -> the mean of the finite values of its packet (the
antennas x subcarriers slice of that packet); then min-max scaling over the whole frame.
Two cases the official loop leaves undefined get a defined answer here: a packet with no
finite value takes the frame's finite mean, and a constant frame becomes all zeros
(the official division by max - min would be 0/0).
"""

from __future__ import annotations

import numpy as np

# Axes of one frame counted from the end: (..., antenna, subcarrier, packet).
_PACKET_AXES = (-3, -2)
_FRAME_AXES = (-3, -2, -1)


def fill_nonfinite(amp: np.ndarray) -> np.ndarray:
    """inf/NaN -> mean of the packet's finite values (frame mean if it has none); float64."""
    x = np.asarray(amp, dtype=np.float64)
    if x.ndim < 3:
        raise ValueError(f"CSI must be (..., antennas, subcarriers, packets), got shape {x.shape}")
    finite = np.isfinite(x)
    if finite.all():
        return x.copy()
    vals = np.where(finite, x, 0.0)
    # Per packet sums/counts: (..., 1, 1, packets); per frame: (..., 1, 1, 1).
    count = finite.sum(axis=_PACKET_AXES, keepdims=True)
    total = vals.sum(axis=_PACKET_AXES, keepdims=True)
    frame_count = count.sum(axis=-1, keepdims=True)
    frame_mean = total.sum(axis=-1, keepdims=True) / np.maximum(frame_count, 1)
    packet_mean = np.where(count > 0, total / np.maximum(count, 1), frame_mean)
    return np.where(finite, x, packet_mean)


def minmax_frame(x: np.ndarray) -> np.ndarray:
    """(x - min) / (max - min) over each frame's last three axes; a constant frame -> 0."""
    lo = x.min(axis=_FRAME_AXES, keepdims=True)
    span = x.max(axis=_FRAME_AXES, keepdims=True) - lo
    ok = span > 0
    return np.where(ok, (x - lo) / np.where(ok, span, 1.0), 0.0)


def clean_csi(amp: np.ndarray) -> np.ndarray:
    """Official cleaning of CSIamp (..., 3, 114, 10) -> float32 in [0, 1], same shape."""
    return minmax_frame(fill_nonfinite(amp)).astype(np.float32)
