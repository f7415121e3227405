"""Triton protocol extensions rigserve does not implement, refused in one wording.

tritonclient offers calls and tensor parameters for Triton extensions rigserve lacks
(shared memory, classification, trace and log settings, unload, loading with a config
override). Answering them as if done would mislead the client (full logits for a top-k,
a shared-memory region nobody wrote, a config it believes is in force), so REST and gRPC
refuse them; these messages say what is not supported and what to do instead, with each
protocol's own way of doing it. REST answers them 400 (InvalidInput) and gRPC
UNIMPLEMENTED, or INVALID_ARGUMENT for a tensor parameter, as Triton does.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rigserve.server.errors import InvalidInput, some_names


@dataclass(frozen=True)
class Protocol:
    """How a client does, over one protocol, what the unsupported extension would do."""

    #: Where tensors go in the request instead of shared memory.
    inline_tensors: str
    #: Where to read per-model timings instead of traces.
    statistics: str
    #: The call that reloads the repository.
    load: str


GRPC = Protocol(inline_tensors="in raw_input_contents", statistics="ModelStatistics",
                load="RepositoryModelLoad")
HTTP = Protocol(inline_tensors="in the request body (JSON 'data', or binary data with "
                               "parameters.binary_data_size)",
                statistics="/v2/models/stats", load=".../load")

LOG_SETTINGS = "log settings are not supported: set the log level when the server starts"


def shared_memory(p: Protocol, kind: str) -> str:
    """``kind``: "system" or "CUDA"."""
    return f"{kind} shared memory is not supported: send tensors {p.inline_tensors}"


def trace_settings(p: Protocol) -> str:
    return ("trace settings are not supported: rigserve exports Prometheus metrics at "
            f"/metrics and Triton statistics ({p.statistics})")


def unload(p: Protocol) -> str:
    return (f"unloading is not supported: the repository is served whole; use {p.load} "
            "to reload it")


def load_overrides(names: Sequence[str]) -> str:
    """``names``: the load parameters sent (Triton's ``config``, ``file:<path>``)."""
    return (f"loading with parameter {some_names(names)} is not supported: rigserve serves "
            "the repository as exported; send no parameters to reload it")


def _tensor_parameter_reasons(p: Protocol) -> dict[str, str]:
    """Tensor parameters of extensions rigserve lacks, and why."""
    return {
        "classification": "the classification extension is not supported; ask for "
                          "'action_logits' and take the argmax",
        "shared_memory_region": "shared-memory inputs/outputs are not supported; send the "
                                f"data {p.inline_tensors}",
    }


def refuse_tensor_parameters(p: Protocol, what: str, params: Collection[str]) -> None:
    """Raise InvalidInput when the parameters of ``what`` (e.g. "output 'joints'") ask for
    an extension rigserve lacks: tritonclient's ``class_count``, shared-memory regions."""
    for key, reason in _tensor_parameter_reasons(p).items():
        if key in params:
            raise InvalidInput(f"{what}: parameter {key!r}: {reason}")
