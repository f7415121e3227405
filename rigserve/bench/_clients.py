"""The load generators `rigserve bench serve` drives: a target, a client protocol, a registry.

Each protocol's clients live in their own module (`_http_load`, `_grpc_load`) and register
themselves here by name (inference clients in CLIENTS, no-inference probes in TRANSPORT);
the benchmark imports those modules and looks clients up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rigserve.registry import Registry


@dataclass(frozen=True)
class Target:
    """What a client needs: where the server is and what to send."""

    http_port: int
    grpc_port: int | None
    subset: str
    tensors: dict[str, np.ndarray]  # model-ready, batch 1, for the subset's inputs
    files: dict[str, bytes]  # MM-Fi file bytes per modality of the subset
    raw: dict[str, np.ndarray]  # decoded raw frames per modality of the subset


class LoadClient(Protocol):
    """One request per ``call`` over a connection opened once."""

    async def open(self) -> None: ...
    async def call(self) -> None: ...
    async def close(self) -> None: ...


ClientFactory = Callable[[Target], LoadClient]
CLIENTS: Registry[str, ClientFactory] = Registry("load client", error=ValueError)
#: Round trips that run no model (a health probe): each protocol's fixed cost on this
#: machine, measured in the same run as the inference rows it explains.
TRANSPORT: Registry[str, ClientFactory] = Registry("transport probe", error=ValueError)
