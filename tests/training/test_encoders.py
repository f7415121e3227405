"""Encoders keep *where* things are: the final feature map is flattened, not pooled."""

from __future__ import annotations

import pytest
import torch
from rigserve.training.encoders import EncoderConfig, create_encoder


def _encoder(name: str, shape: tuple[int, ...]) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_encoder(name, EncoderConfig(dim=16, input_shape=shape, width=4)).eval()


def test_depth_encoder_tells_a_blob_from_the_same_blob_moved_by_one_feature_cell():
    enc = _encoder("depth", (1, 64, 64))
    left, right = torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64)
    left[..., 28:36, 20:28] = 2.0  # shifted by 8 px = one cell of the (H/8, W/8) map
    right[..., 28:36, 28:36] = 2.0
    # The projection reads every cell of the (4w, H/8, W/8) map, not a pooled (4w,) vector.
    assert enc.proj.in_features == 16 * 8 * 8
    with torch.no_grad():
        assert (enc(left) - enc(right)).abs().max() > 1e-3


@pytest.mark.parametrize("size", [(48, 64), (60, 80), (45, 61)])
def test_depth_encoder_builds_for_sizes_not_divisible_by_eight(size):
    enc = _encoder("depth", (1, *size))
    assert enc(torch.rand(2, 1, *size)).shape == (2, 16)


def test_wifi_encoder_tells_which_subcarriers_fade():
    enc = _encoder("wifi", (3, 114, 10))
    low, high = torch.ones(1, 3, 114, 10), torch.ones(1, 3, 114, 10)
    low[:, :, 32:40] = 0.0  # a fade 8 subcarriers (one cell of the /8 map) apart
    high[:, :, 40:48] = 0.0
    with torch.no_grad():
        assert (enc(low) - enc(high)).abs().max() > 1e-3
