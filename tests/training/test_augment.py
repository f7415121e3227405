"""Sensor-noise augmentation: only what a sensor does, only to training batches."""

from __future__ import annotations

import pytest
import torch
from rigserve.training.augment import AUGMENTERS, augment_inputs
from rigserve.training.config import AugmentConfig
from rigserve.training.data import load_data
from rigserve.training.trainer import Trainer

from tests.training.helpers import random_inputs, tiny_config
from tests.training.rig import PREPROCESS, write_tiny_rig

ON = AugmentConfig(enabled=True, depth_jitter_m=0.01, depth_dropout=0.2,
                   point_jitter_m=0.02, point_dropout=0.3)


def test_disabled_augmentation_returns_the_inputs_untouched():
    x = random_inputs(("depth", "lidar", "wifi"), 4)
    assert augment_inputs(x, AugmentConfig(), torch.Generator().manual_seed(0)) is x


def test_depth_holes_stay_holes_and_dropped_pixels_become_holes():
    x = torch.rand(8, 1, 16, 24) + 1.0
    x[:, :, :4] = 0.0  # no return there
    y = AUGMENTERS["depth"](x, ON, torch.Generator().manual_seed(0))
    assert (y[:, :, :4] == 0).all()
    returns = y[:, :, 4:]
    dropped = (returns == 0).float().mean()
    assert dropped == pytest.approx(0.2, abs=0.03)
    kept = returns > 0
    noise = (returns - x[:, :, 4:])[kept]
    assert noise.std() == pytest.approx(0.01, rel=0.1)
    assert noise.mean().abs() < 1e-3  # zero-mean: no global depth shift


@pytest.mark.parametrize("modality", ["lidar", "mmwave"])
def test_points_jitter_in_xyz_only_and_drop_to_padding(modality):
    x = random_inputs((modality,), 16, valid_points=20)[modality]
    y = AUGMENTERS[modality](x, ON, torch.Generator().manual_seed(1))
    assert (y[:, 20:] == 0).all()  # padding untouched
    dropped = y[:, :20, -1] == 0
    assert dropped.float().mean() == pytest.approx(0.3, abs=0.06)
    assert (y[:, :20][dropped] == 0).all()  # a dropped point is a padded row
    kept = ~dropped
    torch.testing.assert_close(y[:, :20, 3:][kept], x[:, :20, 3:][kept])  # features, flag
    delta = (y[:, :20, :3] - x[:, :20, :3])[kept]
    assert delta.std() == pytest.approx(0.02, rel=0.15)
    # No global translation: per-cloud mean shift is noise-sized, not a common offset.
    assert delta.mean(0).abs().max() < 0.01


def test_a_cloud_never_loses_every_point():
    x = random_inputs(("lidar",), 64, valid_points=1)["lidar"]
    y = AUGMENTERS["lidar"](x, AugmentConfig(enabled=True, point_dropout=0.9),
                            torch.Generator().manual_seed(0))
    assert (y[:, :, -1].sum(1) == 1).all()


def test_trainer_augments_training_batches_but_not_meta_validation(tmp_path):
    rig = write_tiny_rig(tmp_path / "rig", frames=3)
    cfg = tiny_config(data=str(rig), preprocess=PREPROCESS, **{"augment.enabled": True})
    trainer = Trainer(cfg, load_data(cfg))
    idx = torch.arange(4)
    clean = trainer.data.train.take(idx).inputs
    train = trainer.make_batch(trainer.data.train, idx, augment=True).inputs
    meta = trainer.make_batch(trainer.data.train, idx).inputs
    assert not torch.equal(train["depth"], clean["depth"])
    assert not torch.equal(train["lidar"], clean["lidar"])
    torch.testing.assert_close(train["wifi"], clean["wifi"])  # no augmenter for CSI
    for m in clean:
        torch.testing.assert_close(meta[m], clean[m])
