"""Per-strategy hyper-parameters: a frozen dataclass of defaults, overridable by keyword.

``create_strategy(name, model, cfg, **options)`` passes keywords through to the strategy;
each method validates them against its own ``Options`` dataclass so a typo fails loudly
with the accepted names rather than silently training with a default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def resolve_options(cls: type[T], strategy: str, overrides: Mapping[str, Any]) -> T:
    """``cls(**overrides)`` after checking every key is a field of ``cls``."""
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"strategy {strategy!r}: unknown option(s) {', '.join(unknown)}; "
                         f"accepted: {', '.join(sorted(fields))}")
    return cls(**overrides)

