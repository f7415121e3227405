"""Build the model (and its strategy) that a config describes."""

from __future__ import annotations

from collections.abc import Mapping

from .config import TrainConfig
from .late_fusion import LateFusionModel
from .model import MultimodalModel
from .strategies import Strategy, create_strategy


def build_model(cfg: TrainConfig, input_shapes: Mapping[str, tuple[int, ...]]
                ) -> tuple[MultimodalModel | LateFusionModel, Strategy | None]:
    """The model for ``cfg`` and, for a joint model, its strategy (which may add heads).

    ``cfg.unimodal`` builds independent single-modality models fused late (a baseline);
    each member is trained alone with the config's strategy.
    """
    mods = tuple(sorted(cfg.modalities or input_shapes))
    if cfg.unimodal:
        members = {m: MultimodalModel([m], input_shapes, cfg.model) for m in mods}
        for member in members.values():
            create_strategy(cfg.strategy, member, cfg)  # strategies may add heads to members
        return LateFusionModel(members), None
    model = MultimodalModel(mods, input_shapes, cfg.model)
    strategy = create_strategy(cfg.strategy, model, cfg)
    return model, strategy
