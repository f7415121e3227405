"""Build small, valid model repositories (manifest + engine files) for manifest tests."""

from __future__ import annotations

from pathlib import Path

from rigserve.export.manifest import (
    EngineEntry,
    Manifest,
    ModalityEntry,
    OutputEntry,
    sha256_file,
    write_manifest,
)
from rigserve.sensors.specs import ACTION_NAMES, JOINT_NAMES, all_subsets

INPUT_SHAPES = {"depth": (-1, 1, 48, 64), "lidar": (-1, 256, 4), "wifi": (-1, 3, 114, 10)}


def fake_repo(repo: Path, modalities: tuple[str, ...] = ("depth", "lidar", "wifi")) -> Manifest:
    """A repository whose engine files are placeholder bytes with their true sha256."""
    (repo / "engines").mkdir(parents=True, exist_ok=True)
    engines = []
    for subset in all_subsets(modalities):
        name = "+".join(subset)
        rel = f"engines/{name}.fp32.onnx"
        (repo / rel).write_bytes(f"engine for {name}".encode())
        engines.append(EngineEntry(
            name=f"rig.{name}", subset=subset, inputs=subset, path=rel, format="onnx",
            precision="fp32", sha256=sha256_file(repo / rel), max_batch=8,
            metrics={"mpjpe_mm": 60.0}, weights={m: 1.0 / len(subset) for m in subset},
            parity={"max_abs_err_joints": 1e-6, "frames": 4},
        ))
    manifest = Manifest(
        model="rig", created="2026-11-23T10:00:00Z", rigserve_version="0.1.0",
        code_version="unknown", preprocessing={"lidar_points": 256},
        modalities={m: ModalityEntry(name=m, input=m, shape=INPUT_SHAPES[m], dtype="float32",
                                     unit="m") for m in modalities},
        outputs={
            "joints": OutputEntry("joints", (-1, 17, 3), "float32", "m", names=JOINT_NAMES),
            "action_logits": OutputEntry("action_logits", (-1, 27), "float32",
                                         labels=ACTION_NAMES),
        },
        engines=tuple(engines), training={"strategy": "pta", "config": {}},
    )
    write_manifest(repo, manifest)
    return manifest
