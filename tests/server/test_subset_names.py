"""Every place that names a modality subset (router, model catalog, manifest) names it
with sensors.specs.subset_name, so the names a request, a manifest and a metric carry
are the same string."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rigserve.sensors.specs import subset_name
from rigserve.server.engines import EngineOptions
from rigserve.server.model_info import ModelCatalog
from rigserve.server.repository import load_repository
from rigserve.server.router import Route


def test_router_catalog_and_manifest_agree_on_subset_names_whatever_the_order(
        tiny_repo: Path) -> None:
    repo = load_repository(tiny_repo, precision=["fp32"], options=EngineOptions(),
                           warmup_runs=0)
    frame = np.zeros(1, np.float32)
    assert Route(inputs={"wifi": frame, "depth": frame}, dropped={}).subset == "depth+wifi"
    assert ModelCatalog(repo).resolve("rig", {"wifi": frame, "depth": frame}) == "depth+wifi"
    assert {e.subset_name for e in repo.manifest.engines_for(["wifi", "depth"])} == {
        "depth+wifi"}
    for name, loaded in repo.engines.items():
        assert name == loaded.entry.subset_name == subset_name(loaded.entry.subset)
        assert repo.manifest.engines_for(list(reversed(loaded.entry.subset)))


def test_a_route_with_no_online_sensor_has_no_subset_name() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        _ = Route(inputs={}, dropped={"lidar": "absent"}).subset
