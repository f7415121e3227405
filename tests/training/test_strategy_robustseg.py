"""RobustSeg: feedback reaches only the teacher's non-primary encoders, at a low rate."""

from __future__ import annotations

import torch
from rigserve.training.factory import build_model
from rigserve.training.purify import TrainModule
from rigserve.training.strategies import Batch
from rigserve.training.strategies._options import scaled_param_groups

from tests.training.helpers import SHAPES, random_inputs, tiny_config

MODS = ("depth", "lidar", "wifi")


def _setup():
    model, strategy = build_model(tiny_config(strategy="robustseg", modalities=MODS,
                                              **{"optim.epochs": 5}), SHAPES)
    g = torch.Generator().manual_seed(0)
    present = torch.ones(12, 3)
    present[::3, 0] = 0.0
    batch = Batch(random_inputs(MODS, 12), torch.randn(12, 17, 3, generator=g),
                  torch.arange(12) % 4, present)
    return model, strategy, batch


def test_teacher_starts_as_a_copy_of_the_student():
    model, strategy, _ = _setup()
    student = dict(model.named_parameters())
    for name, p in strategy.teacher.named_parameters():
        torch.testing.assert_close(p, student[name])


def test_after_warmup_feedback_trains_only_non_primary_teacher_encoders():
    model, strategy, batch = _setup()
    strategy.on_epoch_end(model, 0)  # warm-up is one epoch of five
    assert strategy.distilling
    with torch.no_grad():
        primary = strategy._primary(strategy.teacher.encode(batch.inputs))
    losses = strategy(model, batch)
    assert {"proto", "ifv", "feedback"} <= set(losses)
    losses["loss"].backward()
    for i, m in enumerate(MODS):
        has_grad = any(p.grad is not None for p in strategy.teacher.encoders[m].parameters())
        assert has_grad is (not primary[i]), (m, primary)
    assert 0 < sum(primary) < len(MODS)
    assert all(p.grad is None for p in strategy.teacher.heads.parameters())


def test_teacher_encoders_get_the_low_feedback_learning_rate():
    model, strategy, _ = _setup()
    module = TrainModule(model, strategy)
    groups = scaled_param_groups(list(module.named_parameters()), strategy.lr_scales(), 1e-3)
    slow = {id(p) for g in groups if g["lr"] == 1e-3 * 0.1 for p in g["params"]}
    expected = {id(p) for p in strategy.teacher.encoders.parameters()}
    assert slow == expected
    assert sum(len(g["params"]) for g in groups) == len(list(module.parameters()))
