"""The manifest loader refuses anything the server must not trust, with the reason."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from rigserve.export.manifest import (
    ManifestError,
    load_manifest,
    manifest_schema,
    verify_engine_file,
)

from tests.export.manifests import fake_repo


def _edit(repo: Path, fn: Any) -> None:
    path = repo / "manifest.json"
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_roundtrip_loads_every_subset_with_exact_inputs(tmp_path: Path) -> None:
    written = fake_repo(tmp_path)
    loaded = load_manifest(tmp_path, verify=True)
    assert loaded == written
    assert len(loaded.subsets()) == 7
    for engine in loaded.engines:
        assert engine.inputs == engine.subset
        assert engine.name == f"rig.{engine.subset_name}"
    assert [e.path for e in loaded.engines_for(["lidar", "depth"])] == [
        "engines/depth+lidar.fp32.onnx"]
    assert loaded.outputs_of(loaded.engines[0]) == ("joints", "action_logits")


def test_tampered_engine_file_is_refused_naming_file_and_digests(tmp_path: Path) -> None:
    manifest = fake_repo(tmp_path)
    entry = manifest.engines_for("depth+wifi")[0]
    (tmp_path / entry.path).write_bytes(b"something else")
    with pytest.raises(ManifestError, match=r"depth\+wifi\.fp32\.onnx.*sha256 mismatch.*"
                       + entry.sha256 + r".*file has [0-9a-f]{64}"):
        verify_engine_file(tmp_path, entry)
    with pytest.raises(ManifestError, match="sha256 mismatch"):
        load_manifest(tmp_path, verify=True)
    load_manifest(tmp_path)  # structure alone is still valid


def test_engine_inputs_must_be_exactly_the_subset(tmp_path: Path) -> None:
    fake_repo(tmp_path)
    _edit(tmp_path, lambda d: d["engines"][3].update(inputs=["depth"]))
    with pytest.raises(ManifestError, match=r"inputs \['depth'\] must be exactly the subset"):
        load_manifest(tmp_path)


def test_unknown_modality_in_subset_is_refused(tmp_path: Path) -> None:
    fake_repo(tmp_path)
    _edit(tmp_path, lambda d: d["engines"][0].update(subset=["sonar"], inputs=["sonar"]))
    with pytest.raises(ManifestError, match=r"\['sonar'\] that are not in 'modalities'"):
        load_manifest(tmp_path)


@pytest.mark.parametrize("bad_path", ["../outside.onnx", "/etc/passwd", "engines/../../x.onnx"])
def test_engine_path_must_stay_inside_repo(tmp_path: Path, bad_path: str) -> None:
    repo = tmp_path / "repo"
    fake_repo(repo)
    _edit(repo, lambda d: d["engines"][0].update(path=bad_path))
    with pytest.raises(ManifestError, match="must be relative to the repository"):
        load_manifest(repo)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_symlink_escaping_repo_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    manifest = fake_repo(repo)
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(b"x")
    target = repo / manifest.engines[0].path
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(ManifestError, match="outside the repository"):
        load_manifest(repo)


def test_missing_engine_file_is_refused(tmp_path: Path) -> None:
    manifest = fake_repo(tmp_path)
    (tmp_path / manifest.engines[-1].path).unlink()
    with pytest.raises(ManifestError, match=r"depth\+lidar\+wifi\.fp32\.onnx' does not exist"):
        load_manifest(tmp_path)


def test_schema_violation_names_the_location(tmp_path: Path) -> None:
    fake_repo(tmp_path)
    _edit(tmp_path, lambda d: d["engines"][1].update(precision="fp8"))
    with pytest.raises(ManifestError, match=r"schema violation at engines/1/precision: 'fp8'"):
        load_manifest(tmp_path)


def test_wrong_format_version_is_refused(tmp_path: Path) -> None:
    fake_repo(tmp_path)
    _edit(tmp_path, lambda d: d.update(format=2))
    with pytest.raises(ManifestError, match="schema violation at format"):
        load_manifest(tmp_path)


def test_duplicate_precision_for_a_subset_is_refused(tmp_path: Path) -> None:
    fake_repo(tmp_path)

    def dup(d: dict[str, Any]) -> None:
        twin = dict(d["engines"][0])
        twin["path"] = "engines/copy.onnx"
        d["engines"].append(twin)

    _edit(tmp_path, dup)
    with pytest.raises(ManifestError, match="a second onnx fp32 engine for subset 'depth'"):
        load_manifest(tmp_path)


def test_missing_and_corrupt_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no manifest\.json"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="unreadable manifest"):
        load_manifest(tmp_path)


def test_schema_file_is_itself_a_valid_schema() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(manifest_schema())


def test_manifest_module_does_not_import_torch() -> None:
    import subprocess

    code = ("import sys, rigserve.export, rigserve.export.manifest; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
