"""Uncertainty transfer: the exported uncertainty is the Dirichlet K/S of the fused feature."""

from __future__ import annotations

import torch
from rigserve.training.factory import build_model
from rigserve.training.strategies import Batch

from tests.training.helpers import SHAPES, random_inputs, tiny_config

MODS = ("depth", "wifi")


def test_subset_engine_returns_k_over_s_of_the_fused_feature():
    model, _ = build_model(tiny_config(strategy="uncertainty", modalities=MODS), SHAPES)
    model.eval()
    assert model.output_names[-1] == "uncertainty"
    x = random_inputs(MODS, 5)
    _joints, _logits, u = model.subset_model(MODS)(x["depth"], x["wifi"])
    assert u.shape == (5,)
    head = model.heads["uncertainty"]
    with torch.no_grad():
        fused = model.fuse(model.encode(x), torch.ones(5, 2))
        dist = head.dirichlet(model.norm(fused))
    torch.testing.assert_close(u, 27 / dist.alpha.sum(-1))
    assert bool(((u > 0) & (u <= 1)).all())


def test_confident_samples_weigh_more_in_the_task_loss():
    _model, strategy = build_model(tiny_config(strategy="uncertainty", modalities=MODS), SHAPES)
    g = torch.Generator().manual_seed(0)
    out = {"joints": torch.zeros(2, 17, 3), "action_logits": torch.zeros(2, 27)}
    batch = Batch(random_inputs(MODS, 2), torch.randn(2, 17, 3, generator=g),
                  torch.tensor([0, 1]), torch.ones(2, 2))
    only_first = strategy._weighted_task(out, batch, torch.tensor([2.0, 0.0]))
    only_second = strategy._weighted_task(out, batch, torch.tensor([0.0, 2.0]))
    err = batch.joints.norm(dim=-1).mean(-1)  # per-sample MPJPE of a zero prediction
    torch.testing.assert_close(only_first["pose"], err[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(only_second["pose"], err[1], atol=1e-4, rtol=0)


def test_disagreeing_modalities_feed_the_calibration_target():
    torch.manual_seed(0)
    model, strategy = build_model(tiny_config(strategy="uncertainty", modalities=MODS), SHAPES)
    losses = strategy(model, Batch(random_inputs(MODS, 8), torch.randn(8, 17, 3),
                                   torch.randint(0, 27, (8,)), torch.ones(8, 2)))
    # the calibration target is the OR of evidence and disagreement, never below u
    assert float(losses["disagreement"]) > 0
    assert float(losses["calibration"].detach()) >= 0
    assert {"edl", "align", "task_unweighted"} <= set(losses)
