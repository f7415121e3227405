"""The encoder registry: one encoder per modality, built by name.

Every encoder maps one modality's model-ready batch to a feature vector of size
``cfg.dim`` (the common feature space, see ``rigserve.training.model``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from rigserve.registry import Registry


@dataclass(frozen=True)
class EncoderConfig:
    """What an encoder needs to know to build itself.

    ``input_shape`` is the model-ready shape without the batch axis, as given by
    ``rigserve.sensors.preprocess.model_input_shape`` (e.g. ``(1, 48, 64)`` for depth,
    ``(256, 4)`` for LiDAR).
    """

    dim: int
    input_shape: tuple[int, ...]
    width: int = 16
    #: Point encoders: number of set-abstraction centroids and neighbours per centroid.
    centroids: int = 32
    neighbours: int = 16


EncoderFactory = Callable[[EncoderConfig], nn.Module]
#: modality name → factory; an unknown name raises KeyError listing what is registered.
ENCODERS: Registry[str, EncoderFactory] = Registry("encoder")


def register_encoder(name: str) -> Callable[[EncoderFactory], EncoderFactory]:
    """Register ``factory(cfg) -> nn.Module`` as the encoder for modality ``name``."""
    return ENCODERS.register(name)


def create_encoder(name: str, cfg: EncoderConfig) -> nn.Module:
    """Build the encoder registered for ``name``."""
    return ENCODERS[name](cfg)
