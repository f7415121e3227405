"""FD-CMKD: strong low-band, relaxed high-band alignment to the full-modality teacher."""

from __future__ import annotations

import torch
from rigserve.training.factory import build_model
from rigserve.training.strategies.spectral import frequency_split, scale_normalise

from tests.training.helpers import SHAPES, tiny_config


def _strategy():
    _, strategy = build_model(tiny_config(strategy="freqkd", modalities=("depth", "wifi")),
                              SHAPES)
    return strategy


def test_students_equal_to_the_teacher_cost_nothing():
    strategy = _strategy()
    t = torch.randn(6, 16)
    losses = strategy.decoupled({"depth": t.clone(), "wifi": t.clone()}, t)
    for name in ("low", "high", "scale", "kd"):
        assert float(losses[name]) < 1e-10, name


def test_a_high_frequency_difference_is_charged_to_the_high_band_and_relaxed():
    strategy = _strategy()
    g = torch.Generator().manual_seed(0)
    t = torch.randn(6, 16, generator=g)
    _, high = frequency_split(torch.randn(6, 16, generator=g), keep=strategy.opts.keep)
    student = t + 0.5 * high
    losses = strategy.decoupled({"depth": student}, t)
    assert float(losses["high"]) > 10 * float(losses["low"])
    # relaxed: log(1 + mse) of the normalised high bands stays below their plain mse
    _, s_high = frequency_split(scale_normalise(student), keep=strategy.opts.keep)
    _, t_high = frequency_split(scale_normalise(t), keep=strategy.opts.keep)
    assert float(losses["high"]) < float(((s_high - t_high) ** 2).mean())

