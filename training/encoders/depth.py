"""Depth encoder: a small residual CNN over the (1, H, W) depth map in metres."""

from __future__ import annotations

import torch
from torch import nn

from ._registry import EncoderConfig, register_encoder


class ResidualBlock(nn.Module):
    """Two 3x3 convs with a skip (He et al. 2016), BatchNorm-free so batch size 1 behaves."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.GroupNorm(min(8, channels), channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.norm(self.conv2(self.act(self.conv1(x)))))


def _halved(n: int, times: int) -> int:
    """Size after ``times`` stride-2, kernel-3, padding-1 convolutions: ceil(n / 2) each."""
    for _ in range(times):
        n = (n + 1) // 2
    return n


class DepthEncoder(nn.Module):
    """Strided stages (each halves H and W) with one residual block each, then a linear map
    of the whole (C, H/8, W/8) feature map.

    No global pooling: pose regression needs to know *where* in the image a limb is, and
    a mean over the map keeps only *what* is there (with pooling the model learns the
    mean pose plus a translation and nothing of the articulation).
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        if len(cfg.input_shape) != 3 or cfg.input_shape[0] != 1:
            raise ValueError(f"depth: expected input shape (1, H, W), got {cfg.input_shape}")
        widths = (cfg.width, cfg.width * 2, cfg.width * 4)
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GELU(),
                       ResidualBlock(c_out)]
            c_in = c_out
        self.stages = nn.Sequential(*layers)
        cells = _halved(cfg.input_shape[1], len(widths)) * _halved(cfg.input_shape[2], len(widths))
        self.proj = nn.Linear(c_in * cells, cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stages(x)  # (B, C, H/8, W/8)
        return self.proj(h.flatten(1))  # (B, C·H/8·W/8) -> (B, dim)


@register_encoder("depth")
def depth_encoder(cfg: EncoderConfig) -> nn.Module:
    return DepthEncoder(cfg)
