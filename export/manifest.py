"""The model repository manifest: the one contract between export and the server.

``REPO/manifest.json`` (``"format": 1``) describes every engine in a repository: the
modality subset it serves, its file and sha256, precision, validated metrics and the
purified modality weights (docs/contracts.md). This module is torch-free (numpy,
jsonschema and rigserve.sensors only) because the server imports it; it never trusts a
file it has not validated against ``manifest.schema.json`` plus the checks JSON Schema
cannot express (inputs are exactly the subset, paths stay inside the repository, no
duplicates).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from rigserve.sensors.specs import subset_name

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
_HASH_CHUNK = 1 << 20


class ManifestError(Exception):
    """A repository or manifest the server must not load; names the path and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class RawEntry:
    """How a modality arrives from the rig, before preprocessing (MM-Fi file format)."""

    shape: tuple[int, ...]
    dtype: str
    unit: str
    format: str


@dataclass(frozen=True)
class ModalityEntry:
    """A model input: tensor name, model-ready shape (-1 = batch / variable axis)."""

    name: str
    input: str
    shape: tuple[int, ...]
    dtype: str
    unit: str
    raw: RawEntry | None = None


@dataclass(frozen=True)
class OutputEntry:
    """A head's output tensor; ``names`` label joints, ``labels`` label action classes."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    unit: str | None = None
    names: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineEntry:
    """One engine file serving one modality subset at one precision and format."""

    name: str
    subset: tuple[str, ...]
    inputs: tuple[str, ...]
    path: str
    format: str
    precision: str
    sha256: str
    max_batch: int
    metrics: Mapping[str, float] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)
    parity: Mapping[str, float] = field(default_factory=dict)
    accuracy_delta: Mapping[str, float] = field(default_factory=dict)
    #: Output tensor names; empty means every output in ``Manifest.outputs``.
    outputs: tuple[str, ...] = ()

    @property
    def subset_name(self) -> str:
        """Canonical subset name, e.g. ``depth+lidar``."""
        return subset_name(self.subset)


@dataclass(frozen=True)
class Manifest:
    """A validated ``manifest.json``."""

    model: str
    created: str
    rigserve_version: str
    code_version: str
    preprocessing: Mapping[str, Any]
    modalities: Mapping[str, ModalityEntry]
    outputs: Mapping[str, OutputEntry]
    engines: tuple[EngineEntry, ...]
    training: Mapping[str, Any]
    format: int = FORMAT_VERSION

    def subsets(self) -> list[str]:
        """Every subset name that has at least one engine, in manifest order."""
        return list(dict.fromkeys(e.subset_name for e in self.engines))

    def engines_for(self, subset: str | Sequence[str]) -> list[EngineEntry]:
        """The engines serving ``subset`` (a name like ``depth+lidar`` or a sequence)."""
        name = subset if isinstance(subset, str) else subset_name(list(subset))
        return [e for e in self.engines if e.subset_name == name]

    def outputs_of(self, engine: EngineEntry) -> tuple[str, ...]:
        return engine.outputs or tuple(self.outputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "model": self.model,
            "created": self.created,
            "rigserve_version": self.rigserve_version,
            "code_version": self.code_version,
            "preprocessing": dict(self.preprocessing),
            "modalities": {k: _modality_to_dict(v) for k, v in self.modalities.items()},
            "outputs": {k: _output_to_dict(v) for k, v in self.outputs.items()},
            "engines": [_engine_to_dict(e) for e in self.engines],
            "training": dict(self.training),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Build from an already schema-valid mapping (see :func:`validate_manifest_dict`)."""
        return cls(
            format=int(data["format"]),
            model=data["model"],
            created=data["created"],
            rigserve_version=data["rigserve_version"],
            code_version=data["code_version"],
            preprocessing=dict(data["preprocessing"]),
            modalities={k: _modality_from_dict(k, v) for k, v in data["modalities"].items()},
            outputs={k: _output_from_dict(k, v) for k, v in data["outputs"].items()},
            engines=tuple(_engine_from_dict(e) for e in data["engines"]),
            training=dict(data["training"]),
        )


# ---- (de)serialisation ----------------------------------------------------------------


def _modality_to_dict(m: ModalityEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"input": m.input, "shape": list(m.shape), "dtype": m.dtype,
                           "unit": m.unit}
    if m.raw is not None:
        out["raw"] = {"shape": list(m.raw.shape), "dtype": m.raw.dtype, "unit": m.raw.unit,
                      "format": m.raw.format}
    return out


def _modality_from_dict(name: str, d: Mapping[str, Any]) -> ModalityEntry:
    raw = d.get("raw")
    return ModalityEntry(
        name=name, input=d["input"], shape=tuple(d["shape"]), dtype=d["dtype"], unit=d["unit"],
        raw=None if raw is None else RawEntry(shape=tuple(raw["shape"]), dtype=raw["dtype"],
                                              unit=raw["unit"], format=raw["format"]),
    )


def _output_to_dict(o: OutputEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"shape": list(o.shape), "dtype": o.dtype}
    if o.unit is not None:
        out["unit"] = o.unit
    if o.names:
        out["names"] = list(o.names)
    if o.labels:
        out["labels"] = list(o.labels)
    return out


def _output_from_dict(name: str, d: Mapping[str, Any]) -> OutputEntry:
    return OutputEntry(name=name, shape=tuple(d["shape"]), dtype=d["dtype"], unit=d.get("unit"),
                       names=tuple(d.get("names", ())), labels=tuple(d.get("labels", ())))


def _engine_to_dict(e: EngineEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": e.name, "subset": list(e.subset), "inputs": list(e.inputs), "path": e.path,
        "format": e.format, "precision": e.precision, "sha256": e.sha256,
        "max_batch": e.max_batch, "metrics": dict(e.metrics), "parity": dict(e.parity),
        "accuracy_delta": dict(e.accuracy_delta), "weights": dict(e.weights),
    }
    if e.outputs:
        out["outputs"] = list(e.outputs)
    return out


def _engine_from_dict(d: Mapping[str, Any]) -> EngineEntry:
    return EngineEntry(
        name=d["name"], subset=tuple(d["subset"]), inputs=tuple(d["inputs"]), path=d["path"],
        format=d["format"], precision=d["precision"], sha256=d["sha256"],
        max_batch=int(d["max_batch"]), metrics=dict(d["metrics"]), weights=dict(d["weights"]),
        parity=dict(d.get("parity", {})), accuracy_delta=dict(d.get("accuracy_delta", {})),
        outputs=tuple(d.get("outputs", ())),
    )


# ---- validation -----------------------------------------------------------------------


@cache
def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of ``manifest.json`` (format 1)."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def validate_manifest_dict(data: Any, where: Path | str = MANIFEST_NAME) -> None:
    """Schema-validate ``data``, then the cross-field rules; raise :class:`ManifestError`."""
    validator = jsonschema.Draft202012Validator(manifest_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        loc = "/".join(str(p) for p in err.absolute_path) or "(root)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ManifestError(where, f"schema violation at {loc}: {err.message}{more}")
    _check_engines(data, where)


def _check_engines(data: Mapping[str, Any], where: Path | str) -> None:
    modalities = data["modalities"]
    outputs = data["outputs"]
    seen_paths: set[str] = set()
    seen_keys: set[tuple[str, str, str]] = set()
    for i, eng in enumerate(data["engines"]):
        label = f"engines/{i} ({eng['name']})"
        subset = list(eng["subset"])
        if subset != sorted(subset):
            raise ManifestError(where, f"{label}: subset {subset} must be sorted "
                                       f"(canonical order {sorted(subset)})")
        unknown = [m for m in subset if m not in modalities]
        if unknown:
            raise ManifestError(where, f"{label}: subset names modalities {unknown} that are "
                                       f"not in 'modalities' (known: {sorted(modalities)})")
        expected_inputs = [modalities[m]["input"] for m in subset]
        if list(eng["inputs"]) != expected_inputs:
            raise ManifestError(where, f"{label}: inputs {list(eng['inputs'])} must be exactly "
                                       f"the subset's inputs {expected_inputs}")
        bad_out = [o for o in eng.get("outputs", ()) if o not in outputs]
        if bad_out:
            raise ManifestError(where, f"{label}: outputs {bad_out} are not declared in "
                                       f"'outputs' (declared: {sorted(outputs)})")
        _check_relative_path(eng["path"], where, label)
        if eng["path"] in seen_paths:
            raise ManifestError(where, f"{label}: path {eng['path']!r} is used by two engines")
        seen_paths.add(eng["path"])
        key = (subset_name(subset), eng["format"], eng["precision"])
        if key in seen_keys:
            raise ManifestError(where, f"{label}: a second {eng['format']} {eng['precision']} "
                                       f"engine for subset {key[0]!r}")
        seen_keys.add(key)


def _check_relative_path(path: str, where: Path | str, label: str) -> None:
    p = Path(path)
    if p.is_absolute() or ".." in p.parts or "\\" in path:
        raise ManifestError(where, f"{label}: path {path!r} must be relative to the repository "
                                   "and stay inside it (no absolute paths, no '..')")


def engine_path(repo: Path | str, entry: EngineEntry) -> Path:
    """The engine's file, resolved; refuses paths that escape ``repo`` (also via symlinks)."""
    root = Path(repo).resolve()
    target = (root / entry.path).resolve()
    if not target.is_relative_to(root):
        raise ManifestError(root / MANIFEST_NAME,
                            f"engine {entry.name!r}: path {entry.path!r} resolves to {target}, "
                            f"outside the repository {root}")
    return target


# ---- files ----------------------------------------------------------------------------


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(repo: Path | str, *, verify: bool = False) -> Manifest:
    """Read, validate and return ``REPO/manifest.json``.

    Every engine file must exist inside the repository; with ``verify=True`` each file's
    sha256 is also checked (:func:`verify_engine_file`).
    """
    path = Path(repo) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(path, "no manifest.json: not a rigserve model repository "
                                  "(create one with `rigserve export RUN --out REPO`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(path, f"unreadable manifest: {exc}") from exc
    validate_manifest_dict(data, path)
    manifest = Manifest.from_dict(data)
    for entry in manifest.engines:
        file = engine_path(repo, entry)
        if not file.is_file():
            raise ManifestError(path, f"engine {entry.name!r} ({entry.precision}): file "
                                      f"{entry.path!r} does not exist in the repository")
        if verify:
            verify_engine_file(repo, entry)
    logger.debug("loaded %s: %d engines over %d subsets", path, len(manifest.engines),
                 len(manifest.subsets()))
    return manifest


def verify_engine_file(repo: Path | str, entry: EngineEntry) -> Path:
    """Check the engine file's sha256 against the manifest; return its resolved path."""
    file = engine_path(repo, entry)
    try:
        found = sha256_file(file)
    except OSError as exc:
        raise ManifestError(file, f"engine {entry.name!r}: cannot read engine file: {exc}") from exc
    if found != entry.sha256:
        raise ManifestError(file, f"engine {entry.name!r} ({entry.precision}): sha256 mismatch "
                                  f"for {entry.path!r}: manifest expects {entry.sha256}, "
                                  f"file has {found}; the file was modified or replaced after "
                                  "export, re-export the repository")
    return file


def write_manifest(repo: Path | str, manifest: Manifest) -> Path:
    """Validate and write ``REPO/manifest.json`` atomically (never a half-written manifest)."""
    path = Path(repo) / MANIFEST_NAME
    data = manifest.to_dict()
    validate_manifest_dict(data, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=False)
            fh.write("\n")
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
