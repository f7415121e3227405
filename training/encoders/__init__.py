"""Per-modality encoders, registered by modality name.

Every encoder maps a batch of one modality's model-ready tensors (the arrays of
``rigserve.sensors.preprocess`` with a leading batch axis) to a ``(B, dim)`` feature:
the common feature space is a single vector per modality, which keeps fusion a weighted
sum and every encoder cheap on a CPU. Adding an encoder is one decorated factory in one
file of this package (import it below so it registers).
"""

from . import depth, points, wifi  # noqa: F401  (register the built-in encoders)
from ._registry import ENCODERS, EncoderConfig, create_encoder, register_encoder

__all__ = ["ENCODERS", "EncoderConfig", "create_encoder", "register_encoder"]
