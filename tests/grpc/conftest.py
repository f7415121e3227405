from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.grpc.grpc_server import LiveGrpc, live_grpc
from tests.server.repo_factory import build_tiny_repo


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_repo(tmp_path_factory.mktemp("grpc_repo"))


@pytest.fixture(scope="module")
def grpc_live(tiny_repo: Path) -> Iterator[LiveGrpc]:
    with live_grpc(tiny_repo) as live:
        yield live
