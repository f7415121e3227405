"""Raw frame -> model input: known images, known point counts, the spec's round trip."""

from __future__ import annotations

import numpy as np
import pytest
from rigserve.sensors.errors import InvalidFrame
from rigserve.sensors.preprocess import (
    PREPROCESSORS,
    PreprocessSpec,
    model_input_shape,
    preprocess_frame,
    preprocess_frames,
)
from rigserve.sensors.specs import SENSOR_MODALITIES

from tests.sensors.mmfi_folder import random_frame


def test_depth_block_mean_ignores_missing_pixels_and_converts_mm_to_metres() -> None:
    # 4 x 6 mm image -> 2 x 3 blocks of 2 x 2 pixels.
    img = np.array([
        [1000, 3000, 0, 0, 7000, 7000],
        [2000, 2000, 0, 0, 9000, 7000],
        [500, 500, 0, 4000, 100, 100],
        [500, 500, 0, 0, 100, 100],
    ], dtype=np.uint16)
    spec = PreprocessSpec(depth_size=(2, 3), depth_max_m=6.0)
    out = preprocess_frame("depth", img, spec)
    assert out.shape == (1, 2, 3)
    assert out.dtype == np.float32
    expected = np.array([[2.0, 0.0, 6.0],   # (7+7+9+7)/4 = 7.5 m clipped to 6
                         [0.5, 4.0, 0.1]])  # a lone valid pixel is the block's depth
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)


def test_depth_full_size_matches_a_per_block_loop() -> None:
    img = random_frame("depth", np.random.default_rng(0), depth_hw=(480, 640))
    out = preprocess_frame("depth", img)[0]
    ref = np.zeros((48, 64))
    for i in range(48):
        for j in range(64):
            block = img[i * 10:(i + 1) * 10, j * 10:(j + 1) * 10]
            valid = block[block > 0]
            ref[i, j] = valid.mean() / 1000 if valid.size else 0.0
    np.testing.assert_allclose(out, np.clip(ref, 0, 6), rtol=1e-6)


def test_depth_with_uneven_blocks_matches_a_per_block_loop() -> None:
    # 120 x 160 -> 48 x 64: blocks of 2 or 3 rows/columns starting at i * n // m.
    img = random_frame("depth", np.random.default_rng(3), depth_hw=(120, 160))
    out = preprocess_frame("depth", img)[0]
    rows, cols = (np.arange(49) * 120) // 48, (np.arange(65) * 160) // 64
    ref = np.zeros((48, 64))
    for i in range(48):
        for j in range(64):
            block = img[rows[i]:rows[i + 1], cols[j]:cols[j + 1]]
            valid = block[block > 0]
            ref[i, j] = valid.mean() / 1000 if valid.size else 0.0
    np.testing.assert_allclose(out, ref, rtol=1e-6)


@pytest.mark.parametrize("hw", [(100, 90), (30, 20), (481, 641)])
def test_depth_of_any_size_reaches_the_model_size(hw: tuple[int, int]) -> None:
    img = np.full(hw, 1500, dtype=np.uint16)
    out = preprocess_frame("depth", img)
    assert out.shape == (1, 48, 64)
    np.testing.assert_allclose(out, 1.5, rtol=1e-6)


def test_float_depth_with_nan_treats_nan_as_missing() -> None:
    img = np.full((4, 4), 2000.0)
    img[:2, :2] = np.nan
    out = preprocess_frame("depth", img, PreprocessSpec(depth_size=(2, 2)))[0]
    np.testing.assert_allclose(out, [[0.0, 2.0], [2.0, 2.0]])


def test_few_points_are_zero_padded_with_flag_zero() -> None:
    pts = np.arange(30, dtype=np.float64).reshape(10, 3)
    out = preprocess_frame("lidar", pts, PreprocessSpec(lidar_points=16))
    assert out.shape == (16, 4)
    np.testing.assert_array_equal(out[:10, :3], pts)
    np.testing.assert_array_equal(out[:, 3], [1] * 10 + [0] * 6)
    assert not out[10:].any()


def test_many_points_are_strided_deterministically_with_flag_one() -> None:
    pts = np.random.default_rng(0).normal(size=(1000, 5))
    spec = PreprocessSpec(mmwave_points=64)
    out = preprocess_frame("mmwave", pts, spec)
    assert out.shape == (64, 6)
    np.testing.assert_allclose(out[:, :5], pts[(np.arange(64) * 1000) // 64], rtol=1e-6)
    assert (out[:, 5] == 1).all()
    np.testing.assert_array_equal(out, preprocess_frame("mmwave", pts, spec))


def test_non_finite_points_are_dropped_before_resampling() -> None:
    pts = np.ones((5, 3))
    pts[2, 1] = np.nan
    out = preprocess_frame("lidar", pts, PreprocessSpec(lidar_points=8))
    assert out[:, 3].sum() == 4
    assert np.isfinite(out).all()


def test_wifi_is_cleaned_into_unit_range_or_passed_through() -> None:
    amp = np.random.default_rng(1).uniform(3, 40, (3, 114, 10))
    amp[1, 2, 3] = np.inf
    out = preprocess_frame("wifi", amp)
    assert out.shape == (3, 114, 10)
    assert out.min() == 0.0
    assert out.max() == pytest.approx(1.0)
    raw = preprocess_frame("wifi", amp, PreprocessSpec(wifi_clean=False))
    assert raw[1, 2, 3] == 0.0
    assert raw.max() == pytest.approx(amp[np.isfinite(amp)].max(), rel=1e-6)


@pytest.mark.parametrize("modality", SENSOR_MODALITIES)
def test_batch_equals_frame_by_frame_and_matches_model_input_shape(modality: str) -> None:
    rng = np.random.default_rng(2)
    spec = PreprocessSpec()
    frames = [random_frame(modality, rng, depth_hw=(480, 640)) for _ in range(4)]
    batch = preprocess_frames(modality, frames, spec)
    assert batch.shape == (4, *model_input_shape(modality, spec))
    assert batch.dtype == np.float32
    for raw, row in zip(frames, batch, strict=True):
        np.testing.assert_array_equal(row, preprocess_frame(modality, raw, spec))
    assert preprocess_frames(modality, [], spec).shape == (0, *model_input_shape(modality, spec))


def test_model_input_shapes_follow_the_contract() -> None:
    spec = PreprocessSpec(depth_size=(24, 32), lidar_points=128, mmwave_points=32)
    assert {m: model_input_shape(m, spec) for m in SENSOR_MODALITIES} == {
        "depth": (1, 24, 32), "lidar": (128, 4), "mmwave": (32, 6), "wifi": (3, 114, 10)}
    assert set(SENSOR_MODALITIES) <= set(PREPROCESSORS)


def test_spec_round_trips_through_a_dict_and_rejects_unknown_fields() -> None:
    spec = PreprocessSpec(depth_size=(24, 32), wifi_clean=False)
    data = spec.to_dict()
    assert data["depth_size"] == [24, 32]
    assert PreprocessSpec.from_dict(data) == spec
    with pytest.raises(ValueError, match=r"unknown preprocessing field\(s\) \['depth_hw'\]; "
                                         r"accepted: \['depth_max_m', 'depth_size'"):
        PreprocessSpec.from_dict({"depth_hw": [1, 2]})
    with pytest.raises(ValueError, match="depth_size must be two positive ints"):
        PreprocessSpec(depth_size=(0, 3))
    with pytest.raises(ValueError, match="lidar_points must be a positive int, got -1"):
        PreprocessSpec(lidar_points=-1)


def test_wrong_shape_is_refused_before_preprocessing() -> None:
    with pytest.raises(InvalidFrame, match=r"lidar: expected \(N, 3\) float points, got shape"):
        preprocess_frame("lidar", np.zeros((5, 4)))
