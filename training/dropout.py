"""Modality dropout: which modalities each training sample may use."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .config import DropoutConfig

Sampler = Callable[[int, Sequence[str], DropoutConfig, torch.Generator], torch.Tensor]
DROPOUT_MODES: dict[str, Sampler] = {}


def _mode(name: str) -> Callable[[Sampler], Sampler]:
    def deco(fn: Sampler) -> Sampler:
        DROPOUT_MODES[name] = fn
        return fn
    return deco


def _bits(codes: torch.Tensor, m: int) -> torch.Tensor:
    return ((codes.unsqueeze(1) >> torch.arange(m)) & 1).float()  # (B, M)


@_mode("subset")
def _subset(batch: int, mods: Sequence[str], _cfg: DropoutConfig,
            gen: torch.Generator) -> torch.Tensor:
    """Uniform over the 2^M − 1 non-empty subsets (PTA's random modality dropout)."""
    codes = torch.randint(1, 2 ** len(mods), (batch,), generator=gen)
    return _bits(codes, len(mods))


@_mode("per_modality")
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


@_mode("none")
def _none(batch: int, mods: Sequence[str], _cfg: DropoutConfig,
          _gen: torch.Generator) -> torch.Tensor:
    return torch.ones(batch, len(mods))


def sample_present(batch: int, mods: Sequence[str], cfg: DropoutConfig,
                   gen: torch.Generator) -> torch.Tensor:
    try:
        sampler = DROPOUT_MODES[cfg.mode]
    except KeyError:
        raise ValueError(f"dropout.mode={cfg.mode!r}; accepted: "
                         f"{', '.join(DROPOUT_MODES)}") from None
    return sampler(batch, mods, cfg, gen)
