"""Frequency decoupling of features and the losses FD-CMKD puts on each band.

Liu et al., "Distilling Cross-Modal Knowledge via Feature Disentanglement" (AAAI 2026,
arXiv 2511.19887): low-frequency feature components are shared across modalities, high
ones are modality-specific. Features are split with a Fourier transform, the low band is
aligned strongly (MSE) and the high band loosely (log-MSE), after normalising the scale of
each feature so modalities with different magnitudes can be compared.
"""

from __future__ import annotations

import torch


def low_pass_bins(length: int, keep: float) -> int:
    """Number of rFFT bins (of ``length // 2 + 1``) in the low band for a keep ratio in (0, 1]."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"low-frequency keep ratio must lie in (0, 1], got {keep}")
    return max(1, round(keep * (length // 2 + 1)))


def frequency_split(x: torch.Tensor, keep: float = 0.25,
                    dim: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``x`` into ``(low, high)`` along ``dim`` with ``low + high == x``.

    ``low`` keeps the lowest ``keep`` fraction of rFFT bins (the DC term always) and
    transforms back; ``high`` is the remainder. Both are real and shaped like ``x``.
    """
    n = x.shape[dim]
    spectrum = torch.fft.rfft(x, dim=dim)  # (..., n // 2 + 1, ...) complex
    bins = low_pass_bins(n, keep)
    mask_shape = [1] * x.ndim
    mask_shape[dim] = spectrum.shape[dim]
    mask = (torch.arange(spectrum.shape[dim], device=x.device) < bins).reshape(mask_shape)
    low = torch.fft.irfft(spectrum * mask, n=n, dim=dim)
    return low, x - low


def scale_normalise(x: torch.Tensor, dim: int = -1, eps: float = 1e-6) -> torch.Tensor:
    """Zero-mean, unit-RMS along ``dim`` (the scale-consistency normalisation)."""
    centred = x - x.mean(dim, keepdim=True)
    return centred / centred.pow(2).mean(dim, keepdim=True).add(eps).sqrt()


def log_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Relaxed alignment: log(1 + MSE). Gradient shrinks as 1/(1+e), so large gaps in the
    modality-specific band pull less than they would under plain MSE."""
    return torch.log1p((student - teacher).pow(2).mean())


def scale_consistency(student: torch.Tensor, teacher: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Match the first two moments (per-sample mean and std along ``dim``) of both features."""
    mean_gap = (student.mean(dim) - teacher.mean(dim)).pow(2).mean()
    std_gap = (student.std(dim) - teacher.std(dim)).pow(2).mean()
    return mean_gap + std_gap
