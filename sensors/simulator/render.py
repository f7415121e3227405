"""The renderer registry: one sensor model per modality, built once per sequence.

A renderer factory takes a :class:`RenderContext` (the sequence's ground truth, the room,
the settings) and precomputes what is static for the sequence (the empty room seen by
each sensor); the renderer it returns turns frame ``i`` into the raw MM-Fi array of its
modality, plus any extra arrays its file format stores (WiFi's ``CSIphase``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rigserve.registry import Registry

from .motion import Sequence
from .quality import DEFAULT_QUALITY


@dataclass(frozen=True)
class RenderContext:
    sequence: Sequence
    depth_size: tuple[int, int] = (480, 640)
    #: modality -> quality in [0, 1]; sensors not named take quality.DEFAULT_QUALITY
    quality: dict[str, float] = field(default_factory=dict)

    def quality_of(self, modality: str) -> float:
        return self.quality.get(modality, DEFAULT_QUALITY[modality])


@dataclass(frozen=True)
class Rendered:
    array: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


class Renderer(Protocol):
    def __call__(self, index: int, rng: np.random.Generator) -> Rendered: ...


RendererFactory = Callable[[RenderContext], Renderer]

RENDERERS: Registry[str, RendererFactory] = Registry("simulator renderer", error=ValueError)


def register_renderer(modality: str) -> Callable[[RendererFactory], RendererFactory]:
    return RENDERERS.register(modality)


def build_renderer(modality: str, ctx: RenderContext) -> Renderer:
    return RENDERERS[modality](ctx)
