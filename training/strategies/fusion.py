"""Token fusion for any-subset models: modality tokens, missing-modality tokens, a small
transformer written with plain ops so every subset model exports to ONNX unchanged.

KARMMA (Mohammadi et al., 2025; visinf.github.io/KARMMA) fuses one token per modality with
a transformer block. Its student marks each modality with a learnable modality-specific
token and stands in a learnable *missing-modality token* for any modality that is absent,
so one network serves every subset: at export the subset's absent slots are filled by
those constants.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ModalityTokens(nn.Module):
    """Turns per-modality feature vectors into a token sequence ``(B, 1 + M, D)``.

    Token 0 is a learnable summary (CLS) token; token 1 + i is modality i's projected feature
    plus its modality embedding, or, where modality i is absent, its missing token.
    """

    def __init__(self, modalities: tuple[str, ...], in_dim: int, dim: int) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.proj = nn.ModuleDict({m: nn.Linear(in_dim, dim) for m in self.modalities})
        self.modality_embed = nn.Parameter(torch.randn(len(self.modalities), dim) * 0.02)
        self.missing = nn.Parameter(torch.randn(len(self.modalities), dim) * 0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, feats: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        """``feats``: modality → (B, in_dim) for the modalities computed (others may be left
        out); ``present``: (B, M) bool in ``self.modalities`` order."""
        batch = present.shape[0]
        tokens = []
        for i, m in enumerate(self.modalities):
            missing = self.missing[i].expand(batch, -1)  # (B, D)
            if m in feats:
                token = self.proj[m](feats[m]) + self.modality_embed[i]
                tokens.append(substitute_missing(token, present[:, i], missing))
            else:
                tokens.append(missing)
        seq = torch.stack(tokens, dim=1)  # (B, M, D)
        return torch.cat([self.cls.expand(batch, -1, -1), seq], dim=1)  # (B, 1 + M, D)


def substitute_missing(tokens: torch.Tensor, present: torch.Tensor,
                       missing: torch.Tensor) -> torch.Tensor:
    """Keep ``tokens`` where ``present`` and use ``missing`` elsewhere (broadcast on the last
    axis): the rows of absent modalities, and only those, become the missing token."""
    return torch.where(present.unsqueeze(-1), tokens, missing)


class FusionBlock(nn.Module):
    """Pre-norm transformer block (self-attention + MLP) with an optional key mask."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"fusion width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, T, D); ``key_mask`` (B, T) bool, False = token may not be attended to."""
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)  # (B, H, T, T)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        attn = scores.softmax(-1) @ v  # (B, H, T, D/H)
        x = x + self.out(attn.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


class FusionTransformer(nn.Module):
    """Stack of :class:`FusionBlock`; returns the normalised summary token (B, D)."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(FusionBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens, key_mask)
        return self.norm(tokens[:, 0])


class TokenFusion(nn.Module):
    """The model-side fusion of an any-subset student: ``forward(feats, present) -> (B, dim)``
    as ``MultimodalModel.fusion`` expects. Absent modalities become missing tokens and stay
    attendable (they carry what the student learned to assume when a sensor is gone)."""

    def __init__(self, modalities: tuple[str, ...], dim: int, depth: int, heads: int) -> None:
        super().__init__()
        self.tokens = ModalityTokens(modalities, dim, dim)
        self.transformer = FusionTransformer(dim, depth, heads)

    def forward(self, feats: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return self.transformer(self.tokens(feats, present > 0.5))


class MeanFusion(nn.Module):
    """f = Σ_i m_i f_i / Σ_i m_i: the plain average of the present modalities' features.

    For methods that bring no fusion weights of their own; having no ``theta`` it leaves
    PTA's meta-learned purification out of their comparison."""

    def __init__(self, modalities: tuple[str, ...]) -> None:
        super().__init__()
        self.modalities = tuple(modalities)

    def forward(self, feats: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        ref = next(iter(feats.values()))
        stacked = torch.stack([feats[m] if m in feats else torch.zeros_like(ref)
                               for m in self.modalities], dim=1)  # (B, M, dim)
        w = present.to(ref.dtype)
        w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)  # (B, M)
        return (w.unsqueeze(-1) * stacked).sum(1)  # (B, dim)
