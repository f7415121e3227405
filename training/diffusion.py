"""Diffusion parts of PTA's Align step (DiffKD, Huang et al. NeurIPS 2023), training only.

* ``DDIMScheduler``: DDPM forward process with linear betas and deterministic DDIM
  sampling (Song et al. 2021, eq. 12 with σ = 0).
* ``NoisePredictor``: ε_φ(z_t, t), an MLP with a sinusoidal timestep embedding.
* ``FeatureAutoencoder``: compresses the teacher feature to the latent z_T.
* ``NoiseAdapter``: predicts γ ∈ [0, 1] per sample; the student latent enters the
  sampler as z = γ·z_S + (1 − γ)·ε.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DDIMScheduler(nn.Module):
    """ᾱ_t = Π_{s≤t}(1 − β_s), β linear in [beta_start, beta_end] over ``train_steps``."""

    def __init__(self, train_steps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02, inference_steps: int = 5) -> None:
        super().__init__()
        if not 1 <= inference_steps <= train_steps:
            raise ValueError(f"inference_steps must be in 1..{train_steps}, got {inference_steps}")
        betas = torch.linspace(beta_start, beta_end, train_steps, dtype=torch.float64)
        self.train_steps = train_steps
        self.register_buffer("alphas_cumprod", torch.cumprod(1.0 - betas, 0).float(),
                             persistent=False)
        # "Leading" spacing: t = (n-1)k, ..., k, 0 with k = T // n (e.g. 800, 600, ..., 0).
        self.step_ratio = train_steps // inference_steps
        self.timesteps = [i * self.step_ratio for i in reversed(range(inference_steps))]

    def alpha_bar(self, t: torch.Tensor | int) -> torch.Tensor:
        """ᾱ_t, with ᾱ_{t<0} = 1 (the final step returns the clean estimate)."""
        t = torch.as_tensor(t, device=self.alphas_cumprod.device)
        safe = self.alphas_cumprod[t.clamp_min(0)]
        return torch.where(t >= 0, safe, torch.ones_like(safe))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0): x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε  (DDPM eq. 4); t is (B,)."""
        ab = self.alpha_bar(t).view(-1, *([1] * (x0.dim() - 1)))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def step(self, eps: torch.Tensor, t: int, x_t: torch.Tensor) -> torch.Tensor:
        """One deterministic DDIM step t → t − k:
        x̂_0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t;  x_{t−k} = √ᾱ_{t−k} x̂_0 + √(1−ᾱ_{t−k}) ε."""
        ab, ab_prev = self.alpha_bar(t), self.alpha_bar(t - self.step_ratio)
        x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
        return ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps

    def sample(self, predictor: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Run all inference steps from x (taken as x at the first timestep)."""
        for t in self.timesteps:
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            x = self.step(predictor(x, tt), t, x)
        return x


def timestep_embedding(t: torch.Tensor, dim: int, dtype: torch.dtype = torch.float32
                       ) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (Vaswani et al. 2017; DDPM); (B,) → (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=dtype) / half)
    args = t.to(dtype).unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat([args.sin(), args.cos()], dim=1)


class NoisePredictor(nn.Module):
    """ε_φ(z_t, t): residual MLP conditioned on the timestep embedding."""

    def __init__(self, latent: int, hidden: int = 128, blocks: int = 2) -> None:
        super().__init__()
        self.t_dim = hidden
        self.t_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(latent, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.GELU(),
                          nn.Linear(hidden, hidden)) for _ in range(blocks))
        self.out = nn.Linear(hidden, latent)

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.inp(z) + self.t_mlp(timestep_embedding(t, self.t_dim, z.dtype))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class FeatureAutoencoder(nn.Module):
    """Teacher feature (B, dim) → latent z_T (B, latent) → reconstruction (B, dim)."""

    def __init__(self, dim: int, latent: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(f)
        recon = F.mse_loss(self.decoder(z), f)
        return z, recon


class NoiseAdapter(nn.Module):
    """γ = softmax(Linear(pool(bottleneck(z_S))))[0] ∈ [0, 1] per sample (DiffKD sec. 3.3).

    The latent (B, L) is read as ``tokens`` groups of L/tokens values; the residual
    bottleneck mixes it, the pool averages over the tokens, a linear layer gives two
    logits whose softmax makes γ a convex weight by construction.
    """

    def __init__(self, latent: int, tokens: int = 4, reduction: int = 4) -> None:
        super().__init__()
        if latent % tokens:
            raise ValueError(f"latent size {latent} must be divisible by tokens={tokens}")
        self.tokens = tokens
        self.bottleneck = nn.Sequential(nn.Linear(latent, max(1, latent // reduction)), nn.GELU(),
                                        nn.Linear(max(1, latent // reduction), latent))
        self.fc = nn.Linear(latent // tokens, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z + self.bottleneck(z)
        pooled = h.reshape(z.shape[0], self.tokens, -1).mean(dim=1)  # (B, L/tokens)
        return torch.softmax(self.fc(pooled), dim=-1)[:, 0]  # (B,)
