"""Export: a training run becomes a model repository of verified engines plus a manifest.

Only the torch-free manifest API is imported eagerly (the server imports this package);
the exporter itself (``export_run``, ``ExportOptions``) loads torch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rigserve.export.errors import ExportError
from rigserve.export.manifest import (
    EngineEntry,
    Manifest,
    ManifestError,
    ModalityEntry,
    OutputEntry,
    RawEntry,
    load_manifest,
    verify_engine_file,
    write_manifest,
)

if TYPE_CHECKING:
    from rigserve.export.exporter import ExportOptions, export_run

__all__ = [
    "EngineEntry",
    "ExportError",
    "ExportOptions",
    "Manifest",
    "ManifestError",
    "ModalityEntry",
    "OutputEntry",
    "RawEntry",
    "export_run",
    "load_manifest",
    "verify_engine_file",
    "write_manifest",
]

_LAZY = {"export_run": "exporter", "ExportOptions": "exporter"}


def __getattr__(name: str) -> Any:
    # torch-using names resolve on first access so `import rigserve.export` stays torch-free.
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
