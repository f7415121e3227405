"""WiFi CSI encoder: convolutions over antennas (channels) x subcarriers x packets."""

from __future__ import annotations

import torch
from torch import nn

from ._registry import EncoderConfig, register_encoder


class WifiEncoder(nn.Module):
    """Antennas are input channels; the image is subcarriers x packets (114 x 10).

    Subcarriers are strided (neighbouring subcarriers are strongly correlated). The final
    map is flattened, not pooled: which subcarriers fade is what encodes the multipath
    geometry (where the body scatters), and a mean over subcarriers would erase it.
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        if len(cfg.input_shape) != 3:
            raise ValueError(f"wifi: expected input shape (antennas, subcarriers, packets), "
                             f"got {cfg.input_shape}")
        a = cfg.input_shape[0]
        w = cfg.width
        self.net = nn.Sequential(
            nn.Conv2d(a, w, (5, 3), stride=(2, 1), padding=(2, 1)), nn.GELU(),
            nn.Conv2d(w, w * 2, (5, 3), stride=(2, 1), padding=(2, 1)), nn.GELU(),
            nn.Conv2d(w * 2, w * 4, (3, 3), stride=(2, 2), padding=1), nn.GELU(),
        )
        with torch.no_grad():
            cells = self.net(torch.zeros(1, *cfg.input_shape)).numel()
        self.proj = nn.Linear(cells, cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x)  # (B, 4w, ~S/8, ~P/2)
        return self.proj(h.flatten(1))  # (B, dim)


@register_encoder("wifi")
def wifi_encoder(cfg: EncoderConfig) -> nn.Module:
    return WifiEncoder(cfg)
