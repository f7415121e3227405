"""A repository without an engine for the online subset answers with the best one it has."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
from rigserve.export.manifest import load_manifest, write_manifest

from tests.server.live_server import serve_in_thread
from tests.server.repo_factory import build_tiny_repo, sample_raw_frames


def _partial_repo(root: Path, keep: set[str]) -> Path:
    repo = build_tiny_repo(root)
    manifest = load_manifest(repo)
    engines = tuple(e for e in manifest.engines if e.subset_name in keep)
    write_manifest(repo, dataclasses.replace(manifest, engines=engines))
    return repo


def test_missing_subset_falls_back_to_the_best_available_and_drops_the_rest(
        tmp_path: Path) -> None:
    # No engine takes depth+lidar+wifi or any pair with wifi: the best fit for those three
    # online sensors is depth+lidar (largest summed weight), and wifi is dropped no_engine.
    repo = _partial_repo(tmp_path / "partial", {"depth", "lidar", "wifi", "depth+lidar"})
    raw = sample_raw_frames(seed=3)
    frames = {m: raw[m].tolist() for m in ("depth", "lidar", "wifi")}
    with serve_in_thread(repo) as live:
        r = httpx.post(f"{live.url}/v1/rigs/r/infer", json={"frames": frames}, timeout=30)
        models = httpx.get(f"{live.url}/v2/models/rig.depth+lidar+wifi")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["subset"] == "depth+lidar"
    assert body["used"] == ["depth", "lidar"]
    assert body["dropped"]["wifi"] == "no_engine"
    assert models.status_code == 404  # only the engines it has are models
