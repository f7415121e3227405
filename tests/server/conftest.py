"""Shared fixtures: one tiny real repository and one live server per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.live_server import ServerHandle, serve_in_thread
from tests.server.repo_factory import build_tiny_repo


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_repo(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def live(tiny_repo: Path) -> Iterator[ServerHandle]:
    with serve_in_thread(tiny_repo, max_body_bytes=4 << 20,
                         max_modality_bytes={"depth": 1 << 20, "lidar": 1 << 20,
                                             "mmwave": 1 << 20, "wifi": 1 << 20}) as handle:
        yield handle
