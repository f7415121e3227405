"""What the optimisation defaults promise: warm-up then cosine, per-modality feature
normalisation, scientific-notation rates, and a head-scoped look-ahead whose inner
gradients are exactly a plain backward's."""

from __future__ import annotations

import math

import pytest
import torch
from rigserve.training.config import ConfigError, TrainConfig
from rigserve.training.factory import build_model
from rigserve.training.purify import TrainModule, lookahead_step
from rigserve.training.strategies import Batch
from rigserve.training.trainer import lr_factor

from tests.training.helpers import SHAPES, random_inputs, tiny_config

MODS = ("depth", "lidar", "wifi")


def test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_zero():
    total, warm = 100, 10
    assert lr_factor(0, total, warm) == pytest.approx(0.1)
    assert lr_factor(9, total, warm) == pytest.approx(1.0)
    assert lr_factor(10, total, warm) == pytest.approx(1.0)
    mid = 10 + 45
    assert lr_factor(mid, total, warm) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_factor(total, total, warm) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(0, total, 0) == pytest.approx(1.0)  # no warm-up: cosine from the start


def test_scientific_notation_without_a_dot_is_a_number_and_junk_is_named():
    assert TrainConfig.from_sources(overrides=["optim.lr=5e-3"]).optim.lr == pytest.approx(5e-3)
    with pytest.raises(ConfigError, match=r"optim\.lr: expected a number, got 'fast'"):
        TrainConfig.from_sources(overrides=["optim.lr=fast"])


@pytest.mark.parametrize("norm", [True, False])
def test_each_modality_feature_is_normalised_before_fusion_when_asked(norm):
    cfg = tiny_config(modalities=list(MODS), **{"model.modality_norm": norm})
    model, _ = build_model(cfg, SHAPES)
    x = random_inputs(MODS, 6)
    x["wifi"] = x["wifi"] * 50.0  # a loud encoder input
    with torch.no_grad():
        feats = model.encode(x)
    stds = torch.stack([f.std(dim=-1, unbiased=False).mean() for f in feats.values()])
    if norm:
        torch.testing.assert_close(stds, torch.ones(3), atol=1e-3, rtol=0)
    else:
        assert stds.max() / stds.min() > 3.0  # unnormalised scales differ by the input's
    # The state dict has the same keys either way (Identity has no parameters).
    assert all(k.startswith(("encoders.", "feature_norms.", "fusion.", "norm.", "heads."))
               for k in model.state_dict())


def test_head_scoped_lookahead_leaves_the_inner_gradients_of_a_plain_backward():
    cfg = tiny_config(strategy="pta", modalities=list(MODS))
    model, strategy = build_model(cfg, SHAPES)
    module = TrainModule(model, strategy)
    g = torch.Generator().manual_seed(0)
    batch = Batch(random_inputs(MODS, 4, 1), torch.randn(4, 17, 3, generator=g),
                  torch.randint(0, 27, (4,), generator=g), torch.ones(4, 3))
    val = Batch(random_inputs(MODS, 4, 2), torch.randn(4, 17, 3, generator=g),
                torch.randint(0, 27, (4,), generator=g), torch.ones(4, 3))
    params = [(n, p) for n, p in module.named_parameters() if n != "model.fusion.theta"]
    torch.manual_seed(3)
    module(batch)["loss"].backward()
    plain = {n: p.grad.clone() for n, p in params if p.grad is not None}
    module.zero_grad(set_to_none=True)
    torch.manual_seed(3)  # the same diffusion noise
    _, hyper = lookahead_step(module, batch, val, alpha=0.1, loss_cfg=cfg.loss, scope="head")
    assert hyper.abs().sum() > 0
    for n, p in params:
        if n in plain:
            torch.testing.assert_close(p.grad, plain[n], msg=n)
