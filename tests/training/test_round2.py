"""Round-2 training changes: the distillation-weight ramp and the shared registries."""

from __future__ import annotations

import pytest
import torch
from rigserve.training.config import TrainConfig
from rigserve.training.data import load_data
from rigserve.training.encoders import ENCODERS
from rigserve.training.factory import build_model
from rigserve.training.strategies import STRATEGIES, Batch, create_strategy
from rigserve.training.trainer import Trainer

from rigserve.registry import Registry
from tests.training.helpers import SHAPES, random_inputs, tiny_config
from tests.training.rig import PREPROCESS, write_tiny_rig

MODS = ("depth", "lidar", "wifi")


def _batch(n: int = 4) -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(random_inputs(MODS, n, 1), torch.randn(n, 17, 3, generator=g),
                 torch.randint(0, 27, (n,), generator=g), torch.ones(n, 3))


@pytest.mark.parametrize("strategy", ["pta", "feature_kd"])
def test_distillation_weight_ramps_from_zero_to_lambda_over_the_ramp(strategy):
    cfg = tiny_config(strategy=strategy, modalities=list(MODS),
                      **{"align.ramp": 0.2, "align.weight": 0.1})
    model, strat = build_model(cfg, SHAPES)
    assert strat is not None
    expected = {0: 0.0, 10: 0.05, 20: 0.1, 90: 0.1}  # step → λ with 100 steps in all
    for step, lam in expected.items():
        strat.set_progress(step, 100)
        assert strat.kd_weight() == pytest.approx(lam)
    strat.set_progress(0, 100)
    losses = strat(model, _batch())
    assert losses["kd"] > 0
    # At the start the alignment adds nothing to what the students minimise.
    torch.testing.assert_close(losses["loss"], losses["task"])
    strat.set_progress(50, 100)
    losses = strat(model, _batch())
    torch.testing.assert_close(losses["loss"], losses["task"] + 0.1 * losses["kd"])


def test_no_ramp_keeps_the_papers_lambda_from_the_first_step():
    cfg = tiny_config(strategy="pta", modalities=list(MODS), **{"align.ramp": 0.0})
    _, strat = build_model(cfg, SHAPES)
    assert strat is not None
    strat.set_progress(0, 100)
    assert strat.kd_weight() == pytest.approx(0.1)


def test_trainer_tells_the_strategy_how_far_training_is(tmp_path):
    rig = write_tiny_rig(tmp_path / "rig", frames=3)
    cfg = tiny_config(data=str(rig), preprocess=PREPROCESS,
                      **{"optim.epochs": 2, "align.ramp": 0.5})
    data = load_data(cfg)
    trainer = Trainer(cfg, data)
    total = trainer.steps_per_epoch * 2
    trainer.run_epoch()
    # The last step of epoch 1 ran with progress (steps_per_epoch - 1) / total.
    assert trainer.module.strategy.progress == pytest.approx((trainer.steps_per_epoch - 1)
                                                             / total)


def test_encoder_and_strategy_registries_are_the_shared_registry():
    assert isinstance(ENCODERS, Registry)
    assert isinstance(STRATEGIES, Registry)
    assert {"depth", "lidar", "wifi", "mmwave"} <= set(ENCODERS)
    cfg = tiny_config(modalities=list(MODS))
    model, _ = build_model(cfg.replace(strategy="task_only"), SHAPES)
    with pytest.raises(KeyError, match=r"unknown strategy 'nope'; registered: .*pta"):
        create_strategy("nope", model, cfg)
    with pytest.raises(ValueError, match="strategy 'pta' is already registered"):
        STRATEGIES.add("pta", STRATEGIES["pta"])
    assert isinstance(TrainConfig().align.ramp, float)


@pytest.mark.parametrize("mode", ["subset", "all"])
def test_meta_validation_batch_scores_the_teacher_or_random_subsets(tmp_path, mode):
    rig = write_tiny_rig(tmp_path / "rig", frames=3)
    cfg = tiny_config(data=str(rig), preprocess=PREPROCESS, **{"purify.val_present": mode})
    trainer = Trainer(cfg, load_data(cfg))
    present = torch.cat([trainer.meta_batch().present for _ in range(4)])
    if mode == "all":
        assert (present == 1).all()
    else:  # uniform non-empty subsets: some sample misses a modality, none misses all
        assert (present == 0).any()
        assert (present.sum(1) >= 1).all()
