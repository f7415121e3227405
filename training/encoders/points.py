"""Point-cloud encoders for LiDAR and mmWave: a masked PointNet++-lite.

Input ``(B, P, C + 1)``: C point channels (x y z [doppler intensity]) and a last valid
flag (1 = real point, 0 = padding, from ``rigserve.sensors.preprocess``). Padding must
never influence the feature: padded points are pushed out of every neighbourhood and
excluded from every max-pool.

One set-abstraction level (Qi et al. 2017, PointNet++ sec. 3.2) with fixed strided
centroids instead of farthest-point sampling: the input is already resampled by a
deterministic stride, so strided centroids cover the cloud, and fixed indices keep the
graph free of data-dependent control flow for ONNX export.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from ._registry import EncoderConfig, register_encoder

#: Distance penalty that keeps padded points out of any neighbourhood.
_FAR = 1.0e4
#: Fill value for masked entries before a max-pool.
_NEG = -1.0e4


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.GELU()]
    return nn.Sequential(*layers)


def masked_max(x: torch.Tensor, valid: torch.Tensor, dim: int) -> torch.Tensor:
    """Max over ``dim`` of the entries where ``valid``; 0 where none is valid."""
    v = valid.unsqueeze(-1)
    pooled = torch.where(v, x, torch.full_like(x, _NEG)).amax(dim=dim)
    return torch.where(v.any(dim=dim), pooled, torch.zeros_like(pooled))


class PointEncoder(nn.Module):
    """Masked single-level PointNet++: local kNN groups, shared MLP, max-pools."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        if len(cfg.input_shape) != 2 or cfg.input_shape[1] < 4:
            raise ValueError(f"points: expected input shape (P, C+1) with C >= 3, "
                             f"got {cfg.input_shape}")
        points, channels = cfg.input_shape
        self.channels = channels - 1  # last column is the valid flag
        self.centroids = min(cfg.centroids, points)
        self.neighbours = min(cfg.neighbours, points)
        self.stride = points // self.centroids
        w = cfg.width * 2
        # Relative xyz + the point's other channels, then the centroid's own xyz.
        self.local = _mlp([self.channels, w, w * 2])
        self.glob = _mlp([w * 2 + 3, w * 4, w * 4])
        self.proj = nn.Linear(w * 4, cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats, valid = x[..., : self.channels], x[..., self.channels] > 0.5  # (B,P,C), (B,P)
        xyz = feats[..., :3]
        idx = torch.arange(self.centroids, device=x.device) * self.stride
        c_xyz, c_valid = xyz[:, idx], valid[:, idx]  # (B,K,3), (B,K)
        d2 = ((c_xyz.unsqueeze(2) - xyz.unsqueeze(1)) ** 2).sum(-1)  # (B,K,P)
        d2 = d2 + (~valid).unsqueeze(1).to(x.dtype) * _FAR
        nbr = d2.topk(self.neighbours, dim=-1, largest=False).indices  # (B,K,k)
        b, k, n = nbr.shape
        flat = nbr.reshape(b, k * n)
        g = torch.gather(feats, 1, flat.unsqueeze(-1).expand(b, k * n, self.channels))
        g = g.reshape(b, k, n, self.channels)  # (B,K,k,C)
        g_valid = torch.gather(valid, 1, flat).reshape(b, k, n)  # (B,K,k)
        rel = torch.cat([g[..., :3] - c_xyz.unsqueeze(2), g[..., 3:]], dim=-1)
        local = masked_max(self.local(rel), g_valid, dim=2)  # (B,K,2w)
        c_ok = c_valid & g_valid.any(dim=-1)
        h = self.glob(torch.cat([local, c_xyz], dim=-1))  # (B,K,4w)
        return self.proj(masked_max(h, c_ok, dim=1))  # (B,dim)


@register_encoder("lidar")
def lidar_encoder(cfg: EncoderConfig) -> nn.Module:
    return PointEncoder(cfg)


@register_encoder("mmwave")
def mmwave_encoder(cfg: EncoderConfig) -> nn.Module:
    return PointEncoder(cfg)
