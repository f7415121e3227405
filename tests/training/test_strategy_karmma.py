"""KARMMA: a lighter any-subset student, staged teacher training, missing tokens at export."""

from __future__ import annotations

import torch
from rigserve.sensors.preprocess import PreprocessSpec, model_input_shape
from rigserve.training.config import TrainConfig
from rigserve.training.factory import build_model
from rigserve.training.strategies import Batch
from torch.utils.flop_counter import FlopCounterMode

from tests.training.helpers import SHAPES, random_inputs, tiny_config

MODS = ("depth", "lidar", "wifi")


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def test_student_costs_at_most_about_half_the_teacher_at_default_sizes():
    shapes = {m: model_input_shape(m, PreprocessSpec()) for m in MODS}
    cfg = TrainConfig.from_sources(overrides={"strategy": "karmma", "modalities": list(MODS)})
    model, strategy = build_model(cfg, shapes)
    x = {m: torch.rand(1, *shapes[m]) for m in MODS}
    present = torch.ones(1, 3)
    with torch.no_grad():
        student = _flops(lambda: model(x, present))
        t = strategy.teacher
        teacher = _flops(lambda: t.heads(t.fuse(t.encode(x), present), None))
    ratio = student / teacher
    assert 0.2 < ratio <= 0.6, f"student/teacher FLOPs {ratio:.2f}"


def _batch(n: int = 8) -> Batch:
    g = torch.Generator().manual_seed(0)
    present = torch.ones(n, 3)
    present[::2, 1] = 0.0
    return Batch(random_inputs(MODS, n), torch.randn(n, 17, 3, generator=g),
                 torch.randint(0, 27, (n,), generator=g), present)


def _grads(module: torch.nn.Module) -> set[str]:
    return {n for n, p in module.named_parameters() if p.grad is not None}


def test_teacher_encoders_freeze_after_their_stage_and_the_teacher_after_its_own():
    model, strategy = build_model(tiny_config(strategy="karmma", modalities=MODS,
                                              **{"optim.epochs": 5}), SHAPES)
    batch = _batch()
    seen = []
    for epoch in range(3):
        model.zero_grad(set_to_none=True)
        strategy.zero_grad(set_to_none=True)
        losses = strategy(model, batch)
        losses["loss"].backward()
        grads = _grads(strategy.teacher)
        seen.append((strategy.stage, any(n.startswith("encoders.") for n in grads),
                     any(n.startswith("fusion.") for n in grads), "kd" in losses))
        assert _grads(model)  # the student learns in every stage
        strategy.on_epoch_end(model, epoch)
    assert seen == [("unimodal", True, True, False), ("teacher", False, True, False),
                    ("distill", False, False, True)]


def test_subset_engine_is_the_student_with_missing_tokens_for_absent_modalities():
    model, _ = build_model(tiny_config(strategy="karmma", modalities=MODS), SHAPES)
    model.eval()
    x = random_inputs(MODS, 4)
    sub = model.subset_model(("depth", "wifi"))
    joints, logits = sub(x["depth"], x["wifi"])
    mask = torch.tensor([[1.0, 0.0, 1.0]]).expand(4, -1)
    # whatever LiDAR holds, the masked student reads its missing token instead
    noise = {**x, "lidar": torch.randn_like(x["lidar"]) * 10}
    full = model(noise, mask)
    torch.testing.assert_close(joints, full["joints"])
    torch.testing.assert_close(logits, full["action_logits"])
    assert not torch.allclose(model(noise)["joints"], joints)
