"""Frame validation: every invalid reason fires on the frame that earns it, and only then."""

from __future__ import annotations

import numpy as np
import pytest
from rigserve.sensors.errors import INVALID_REASONS, InvalidFrame, UnknownModality
from rigserve.sensors.validate import check_frame

from tests.sensors.mmfi_folder import MODALITIES, random_frame


@pytest.mark.parametrize("modality", MODALITIES)
def test_realistic_frames_pass(modality: str) -> None:
    frame = random_frame(modality, np.random.default_rng(0), depth_hw=(480, 640))
    assert check_frame(modality, frame) is not None


def _nan_at(shape: tuple[int, ...], at: tuple[int, ...]) -> np.ndarray:
    arr = np.random.default_rng(1).uniform(1, 2, shape)
    arr[at] = np.nan
    return arr


BAD_FRAMES = [
    ("lidar", np.zeros((1024, 4)), "shape", r"lidar: expected \(N, 3\) float points, "
                                            r"got shape \(1024, 4\)"),
    ("mmwave", np.ones((4, 3)), "shape", r"mmwave: expected \(N, 5\) float points, got shape"),
    ("wifi", np.ones((3, 114)), "shape", r"wifi: expected \(3, 114, 10\) float CSI amplitudes, "
                                         r"got shape \(3, 114\)"),
    ("depth", np.ones((2, 3, 4), np.uint16), "shape", r"depth: expected \(H, W\) uint16 depth "
                                                      r"image in mm, got shape \(2, 3, 4\)"),
    ("depth", np.ones((4, 4), bool), "dtype", "depth: expected .* got dtype bool"),
    ("lidar", np.array([["a", "b", "c"]]), "dtype", "got dtype <U1"),
    ("lidar", np.zeros((0, 3)), "empty", r"got an empty frame of shape \(0, 3\)"),
    ("lidar", _nan_at((10, 3), (4, 1)), "nonfinite", "got 1 non-finite of 30 values"),
    ("lidar", np.array([[1.0, 2.0, 3.0], [0.5, -1500.0, 1.0]]), "range",
     r"got a coordinate of 1500 m \(at most 1000 m from the sensor on each axis\)"),
    ("mmwave", np.array([[1.0, 2.0, 3.0, 0.1, 5.0], [1e30, 2.0, 3.0, 0.1, 5.0]]), "range",
     "got a coordinate of 1e\\+30 m"),
    ("depth", np.zeros((48, 64), np.uint16), "flat", "all-zero image"),
    ("depth", np.full((48, 64), 900, np.uint16), "flat", "every pixel 900"),
    ("depth", np.full((4, 4), -5.0), "dtype", "negative depth"),
    ("lidar", np.zeros((7, 3)), "flat", "7 points all at the origin"),
    ("lidar", np.tile([1.0, 2.0, 3.0], (5, 1)), "flat", "5 identical points"),
    ("wifi", np.full((3, 114, 10), np.inf), "nonfinite", "no finite value among 3420"),
    ("wifi", np.full((3, 114, 10), 7.0), "flat", "flat-lined frame"),
    ("rgb", np.zeros((17, 2)), "flat", "every keypoint at the same place"),
]


@pytest.mark.parametrize(("modality", "raw", "reason", "message"), BAD_FRAMES)
def test_bad_frame_raises_with_reason_and_message(modality: str, raw: np.ndarray, reason: str,
                                                  message: str) -> None:
    with pytest.raises(InvalidFrame, match=message) as info:
        check_frame(modality, raw)
    assert info.value.reason == reason
    assert info.value.modality == modality


def test_every_reason_is_exercised() -> None:
    assert {reason for _, _, reason, _ in BAD_FRAMES} == set(INVALID_REASONS)


def test_csi_with_some_inf_nan_is_valid_because_cleaning_repairs_it() -> None:
    amp = np.random.default_rng(2).uniform(1, 30, (3, 114, 10))
    amp[0, :, 3] = np.inf
    amp[1, 5, 5] = np.nan
    check_frame("wifi", amp)


def test_single_radar_point_is_not_flat() -> None:
    check_frame("mmwave", np.array([[0.5, 1.0, 2.0, 0.1, 30.0]]))


def test_ragged_lists_and_unknown_modalities_are_named() -> None:
    with pytest.raises(InvalidFrame, match=r"lidar: expected .* got an array-like numpy cannot"):
        check_frame("lidar", [[1.0, 2.0, 3.0], [1.0]])
    with pytest.raises(UnknownModality, match="unknown modality 'sonar'"):
        check_frame("sonar", np.zeros(3))


def test_invalid_frame_rejects_reasons_outside_the_contract() -> None:
    with pytest.raises(ValueError, match="reason 'broken' is not one of"):
        InvalidFrame("lidar", "broken", "x")
