"""Loading a model repository: validate the manifest, check sha256, pick, load and warm.

Several manifest entries may serve one subset (fp32 / int8 / TensorRT); the server keeps
one per subset: the first of the configured precision preference whose back end this
machine can run, native TensorRT before ONNX at equal precision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rigserve.export.manifest import (
    EngineEntry,
    Manifest,
    ManifestError,
    load_manifest,
    verify_engine_file,
)
from rigserve.server.engines import Engine, EngineOptions, backend_available, load_engine
from rigserve.server.errors import RepositoryError

logger = logging.getLogger(__name__)

_FORMAT_ORDER = ("tensorrt", "onnx")


@dataclass(frozen=True)
class LoadedEngine:
    """An engine ready to run, with the manifest facts the server answers from."""

    entry: EngineEntry
    engine: Engine
    #: input name -> model-ready shape without the batch axis (manifest's, -1 kept).
    input_shapes: Mapping[str, tuple[int, ...]]
    warmup_s: float

    @property
    def subset(self) -> str:
        return self.entry.subset_name

    @property
    def name(self) -> str:
        return self.entry.name


@dataclass(frozen=True)
class Repository:
    """A loaded repository: the manifest and one warmed engine per subset."""

    path: Path
    manifest: Manifest
    engines: Mapping[str, LoadedEngine]  # subset name -> engine

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted(self.manifest.modalities))


def choose_entries(manifest: Manifest, precision: Sequence[str]) -> dict[str, EngineEntry]:
    """One entry per subset: precision preference first, then TensorRT before ONNX."""
    chosen: dict[str, EngineEntry] = {}
    for subset in manifest.subsets():
        runnable = [e for e in manifest.engines_for(subset) if backend_available(e.format)]
        ranked = sorted(
            (e for e in runnable if e.precision in precision),
            key=lambda e: (list(precision).index(e.precision), _FORMAT_ORDER.index(e.format)
                           if e.format in _FORMAT_ORDER else len(_FORMAT_ORDER)),
        )
        if not ranked:
            have = [f"{e.format}/{e.precision}" for e in manifest.engines_for(subset)]
            raise RepositoryError(f"subset {subset!r}: no engine this machine can run with "
                                  f"precision in {list(precision)}; repository has {have}")
        chosen[subset] = ranked[0]
    return chosen


def verify_repository(path: Path, precision: Sequence[str]
                      ) -> tuple[Manifest, dict[str, EngineEntry], dict[str, Path]]:
    """The manifest, the engine chosen for each subset and its sha256-checked file,
    resolved and known to stay inside the repository; RepositoryError naming what is
    wrong otherwise. Cheap (no engine is loaded): `rigserve serve` checks this first."""
    try:
        manifest = load_manifest(path)
        chosen = choose_entries(manifest, precision)
        files = {subset: verify_engine_file(path, entry) for subset, entry in chosen.items()}
    except ManifestError as exc:
        raise RepositoryError(f"cannot load repository {path}: {exc}") from exc
    return manifest, chosen, files


def load_repository(path: Path, *, precision: Sequence[str], options: EngineOptions,
                    warmup_runs: int = 2, max_batch: int = 1) -> Repository:
    """Validate, verify, load and warm every subset's engine (blocking; run off the loop)."""
    manifest, chosen, files = verify_repository(path, precision)
    engines: dict[str, LoadedEngine] = {}
    for subset, entry in chosen.items():
        engine = load_engine(entry.format, entry.name, files[subset], options)
        # Engine input names are the manifest's `input` per modality; shapes drop the batch axis.
        shapes = {manifest.modalities[m].input: tuple(manifest.modalities[m].shape[1:])
                  for m in entry.subset}
        warm = _warm(engine, shapes, warmup_runs, max(1, min(max_batch, entry.max_batch)))
        engines[subset] = LoadedEngine(entry, engine, shapes, warm)
        logger.info("engine %s (%s %s on %s) warmed in %.1f ms", entry.name, entry.format,
                    entry.precision, engine.provider, warm * 1e3)
    return Repository(path=path, manifest=manifest, engines=engines)


def _warm(engine: Engine, shapes: Mapping[str, tuple[int, ...]], runs: int, batch: int) -> float:
    """Run zeros at batch 1 and the largest batch so first requests pay no allocation."""
    t0 = time.perf_counter()
    for b in sorted({1, batch}):
        # Variable (non-batch) axes warm at 1: any size is valid for such an input.
        feed = {name: np.zeros((b, *(d if d > 0 else 1 for d in shape)), np.float32)
                for name, shape in shapes.items()}
        for _ in range(runs):
            engine.run(feed)
    return time.perf_counter() - t0
