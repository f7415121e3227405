"""Repository pieces: manifest entries from the modality registry, code version, publishing."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rigserve.export.manifest import MANIFEST_NAME, ModalityEntry, OutputEntry, RawEntry
from rigserve.sensors.specs import ACTION_NAMES, JOINT_NAMES, get_modality

logger = logging.getLogger(__name__)

#: Model-input units (after preprocessing): depth in metres, CSI min-max normalised.
_INPUT_UNITS = {"depth": "m", "lidar": "m", "mmwave": "m", "wifi": "normalized"}


def modality_entries(modalities: Sequence[str], input_shapes: Mapping[str, tuple[int, ...]]
                     ) -> dict[str, ModalityEntry]:
    """Manifest ``modalities``: model-input tensor (batch axis -1) and the raw file format."""
    out = {}
    for m in modalities:
        spec = get_modality(m)
        out[m] = ModalityEntry(
            name=m, input=m, shape=(-1, *input_shapes[m]), dtype="float32",
            unit=_INPUT_UNITS.get(m, spec.unit),
            raw=RawEntry(shape=tuple(spec.shape), dtype=spec.dtype, unit=spec.unit,
                         format=spec.ext.lstrip(".")),
        )
    return out


def output_entries(reference: Mapping[str, np.ndarray]) -> dict[str, OutputEntry]:
    """Manifest ``outputs`` from the PyTorch outputs' shapes, with joint and action labels."""
    out = {}
    for name, value in reference.items():
        shape = (-1, *value.shape[1:])
        if name == "joints":
            out[name] = OutputEntry(name, shape, "float32", "m", names=JOINT_NAMES)
        elif name == "action_logits":
            out[name] = OutputEntry(name, shape, "float32", labels=ACTION_NAMES)
        else:
            out[name] = OutputEntry(name, shape, str(value.dtype))
    return out


def engine_weights(run: Any, subset: Sequence[str]) -> dict[str, float]:
    """The purified weights the subset engine fuses with: w̃ = w restricted to the subset,
    renormalised (PTA's purified fusion over the present modalities)."""
    model = getattr(run, "model", None)
    if model is not None and hasattr(model, "purified_weights"):
        return {m: float(w) for m, w in model.purified_weights(tuple(subset)).items()}
    raw = {m: float(run.weights.get(m, 0.0)) for m in subset}
    total = sum(raw.values())
    return {m: w / total for m, w in raw.items()} if total > 0 else raw


def code_version() -> str:
    """The git commit of the code doing the export, ``-dirty`` if uncommitted, or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=5,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha or "unknown"


def check_target(out: Path) -> None:
    """``out`` must be new, empty, or an older rigserve repository (it gets replaced)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / MANIFEST_NAME).is_file())):
        raise FileExistsError(f"{out} exists and is not a rigserve model repository "
                              f"(no {MANIFEST_NAME}); choose an empty or new output folder")


def publish(staging: Path, out: Path) -> None:
    """Move the finished ``staging`` repository to ``out``, replacing an older repository.

    Refuses to replace a folder that is not a rigserve repository (no manifest.json), so
    a typo in ``--out`` cannot wipe unrelated files.
    """
    check_target(out)
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)
    logger.info("published %s", out)
