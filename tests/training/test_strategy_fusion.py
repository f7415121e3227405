"""Modality tokens and missing-modality tokens of the any-subset fusion (KARMMA)."""

from __future__ import annotations

import pytest
import torch
from rigserve.training.strategies.fusion import (
    FusionBlock,
    FusionTransformer,
    ModalityTokens,
    substitute_missing,
)

MODS = ("depth", "lidar", "wifi")


def _tokens(dim: int = 8) -> ModalityTokens:
    torch.manual_seed(0)
    return ModalityTokens(MODS, in_dim=6, dim=dim)


def test_missing_tokens_replace_exactly_the_absent_modalities():
    tok = _tokens()
    feats = {m: torch.randn(4, 6) for m in MODS}
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 1, 0]], dtype=torch.bool)
    seq = tok(feats, present)
    assert seq.shape == (4, 1 + len(MODS), 8)
    for i, m in enumerate(MODS):
        real = tok.proj[m](feats[m]) + tok.modality_embed[i]
        for b in range(4):
            expected = real[b] if present[b, i] else tok.missing[i]
            torch.testing.assert_close(seq[b, 1 + i], expected)


def test_a_modality_not_computed_at_all_is_its_missing_token():
    tok = _tokens()
    present = torch.tensor([[True, False, False]] * 2)
    seq = tok({"depth": torch.randn(2, 6)}, present)
    torch.testing.assert_close(seq[:, 2], tok.missing[1].expand(2, -1))
    torch.testing.assert_close(seq[:, 3], tok.missing[2].expand(2, -1))


def test_substitute_missing_broadcasts_one_missing_row():
    tokens = torch.arange(6.0).reshape(3, 2)
    out = substitute_missing(tokens, torch.tensor([True, False, True]), torch.tensor([-1.0, -2.0]))
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0], [-1.0, -2.0], [4.0, 5.0]]))


def test_masked_keys_do_not_change_the_fused_summary():
    torch.manual_seed(1)
    fusion = FusionTransformer(dim=8, depth=2, heads=2)
    x = torch.randn(2, 4, 8)
    mask = torch.tensor([[True, True, False, True]] * 2)
    y1 = fusion(x, mask)
    x2 = x.clone()
    x2[:, 2] = 100.0  # whatever sits in a masked slot must not leak into the summary
    torch.testing.assert_close(fusion(x2, mask), y1)
    assert not torch.allclose(fusion(x2), y1)


def test_fusion_width_must_divide_into_heads():
    with pytest.raises(ValueError, match="fusion width 10 is not divisible by 4 heads"):
        FusionBlock(10, 4)
