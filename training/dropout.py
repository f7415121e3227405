"""Modality dropout: which modalities each training sample may use."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from rigserve.registry import Registry

from .config import DropoutConfig

Sampler = Callable[[int, Sequence[str], DropoutConfig, torch.Generator], torch.Tensor]
#: ``dropout.mode`` → sampler; an unknown mode raises ValueError listing the registered ones.
DROPOUT_MODES: Registry[str, Sampler] = Registry("dropout.mode", error=ValueError)


def _bits(codes: torch.Tensor, m: int) -> torch.Tensor:
    return ((codes.unsqueeze(1) >> torch.arange(m)) & 1).float()  # (B, M)


@DROPOUT_MODES.register("subset")
def _subset(batch: int, mods: Sequence[str], _cfg: DropoutConfig,
            gen: torch.Generator) -> torch.Tensor:
    """Uniform over the 2^M − 1 non-empty subsets (PTA's random modality dropout)."""
    codes = torch.randint(1, 2 ** len(mods), (batch,), generator=gen)
    return _bits(codes, len(mods))


@DROPOUT_MODES.register("per_modality")
def _per_modality(batch: int, mods: Sequence[str], cfg: DropoutConfig,
                  gen: torch.Generator) -> torch.Tensor:
    """Each modality dropped with its hand-set rate (X-Fi style); an all-dropped sample
    keeps one modality drawn uniformly."""
    rates = torch.tensor([cfg.rates.get(m, cfg.default_rate) for m in mods])
    keep = (torch.rand(batch, len(mods), generator=gen) >= rates).float()
    rescue = torch.randint(0, len(mods), (batch,), generator=gen)
    empty = keep.sum(1) == 0
    keep[empty, rescue[empty]] = 1.0
    return keep


@DROPOUT_MODES.register("none")
def _none(batch: int, mods: Sequence[str], _cfg: DropoutConfig,
          _gen: torch.Generator) -> torch.Tensor:
    return torch.ones(batch, len(mods))


def sample_present(batch: int, mods: Sequence[str], cfg: DropoutConfig,
                   gen: torch.Generator) -> torch.Tensor:
    return DROPOUT_MODES[cfg.mode](batch, mods, cfg, gen)
