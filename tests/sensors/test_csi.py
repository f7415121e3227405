"""The vectorised CSI cleaning agrees with a plain loop written from MM-Fi's description."""

from __future__ import annotations

import numpy as np
import pytest
from rigserve.sensors.csi import clean_csi


def reference_clean(amp: np.ndarray) -> np.ndarray:
    """Straightforward per-packet loop: inf -> NaN, NaN -> packet mean, frame min-max."""
    data = np.array(amp, dtype=np.float64)
    data[np.isinf(data)] = np.nan
    finite_all = data[~np.isnan(data)]
    frame_mean = finite_all.mean() if finite_all.size else 0.0
    for p in range(data.shape[2]):
        packet = data[:, :, p]
        finite = packet[~np.isnan(packet)]
        fill = finite.mean() if finite.size else frame_mean
        packet[np.isnan(packet)] = fill
    lo, hi = data.min(), data.max()
    return np.zeros_like(data) if hi == lo else (data - lo) / (hi - lo)


def noisy_csi(rng: np.random.Generator) -> np.ndarray:
    amp = rng.uniform(0, 60, (3, 114, 10))
    amp[rng.random(amp.shape) < 0.05] = np.inf
    amp[rng.random(amp.shape) < 0.05] = -np.inf
    amp[rng.random(amp.shape) < 0.05] = np.nan
    return amp


@pytest.mark.parametrize("seed", range(5))
def test_cleaning_matches_reference_on_random_frames_with_inf_and_nan(seed: int) -> None:
    amp = noisy_csi(np.random.default_rng(seed))
    got = clean_csi(amp)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, reference_clean(amp), atol=1e-6)
    assert got.min() == 0.0
    assert got.max() == pytest.approx(1.0)


def test_packet_without_finite_value_takes_the_frame_mean() -> None:
    amp = noisy_csi(np.random.default_rng(9))
    amp[:, :, 4] = np.nan
    np.testing.assert_allclose(clean_csi(amp), reference_clean(amp), atol=1e-6)


def test_batched_cleaning_equals_frame_by_frame() -> None:
    rng = np.random.default_rng(3)
    batch = np.stack([noisy_csi(rng) for _ in range(6)])
    np.testing.assert_allclose(clean_csi(batch),
                               np.stack([reference_clean(f) for f in batch]), atol=1e-6)


def test_constant_or_all_missing_frame_cleans_to_zeros_not_nan() -> None:
    assert not clean_csi(np.full((3, 114, 10), 4.0)).any()
    assert not clean_csi(np.full((3, 114, 10), np.nan)).any()


def test_input_is_not_modified() -> None:
    amp = noisy_csi(np.random.default_rng(4))
    before = amp.copy()
    clean_csi(amp)
    np.testing.assert_array_equal(amp, before)


def test_cleaning_rejects_arrays_without_packet_axes() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., antennas, subcarriers, packets\), got shape"):
        clean_csi(np.array([np.nan, 1.0]))
