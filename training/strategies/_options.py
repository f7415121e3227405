"""Per-strategy hyper-parameters: a frozen dataclass of defaults, overridable by keyword.

``create_strategy(name, model, cfg, **options)`` passes keywords through to the strategy;
each method validates them against its own ``Options`` dataclass so a typo fails loudly
with the accepted names rather than silently training with a default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def resolve_options(cls: type[T], strategy: str, overrides: Mapping[str, Any]) -> T:
    """``cls(**overrides)`` after checking every key is a field of ``cls``."""
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"strategy {strategy!r}: unknown option(s) {', '.join(unknown)}; "
                         f"accepted: {', '.join(sorted(fields))}")
    return cls(**overrides)



def scaled_param_groups(named: list[tuple[str, torch.nn.Parameter]], scales: Mapping[str, float],
                        lr: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups: a parameter whose name starts with a prefix in ``scales``
    learns at ``lr * scale`` (first matching prefix), every other one at ``lr``.

    This is how a strategy's ``lr_scales()`` (e.g. RobustSeg's low-rate feedback into the
    teacher) reaches the optimizer; Adam-type optimizers ignore a loss weight's scale, so
    a slower learner needs its own learning rate.
    """
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, p in named:
        scale = next((s for prefix, s in scales.items() if name.startswith(prefix)), 1.0)
        groups.setdefault(scale, []).append(p)
    return [{"params": ps, "lr": lr * s} for s, ps in sorted(groups.items(), reverse=True)]
