"""The non-editable install (the Docker images) ships every subpackage.

The top-level folders are mapped to `rigserve.*` with setuptools' package-dir, which
needs every subpackage listed by hand; one left out installs fine in editable mode
(the tests' mode) and is missing from a wheel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_and_mapped_in_pyproject() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping: dict[str, str] = tool["package-dir"]
    listed = set(tool["packages"])
    assert listed == set(mapping)
    for name, folder in mapping.items():
        assert (ROOT / folder / "__init__.py").is_file(), f"{name} -> {folder} has no __init__.py"
    found = set()
    for top in {folder.split("/")[0] for folder in mapping.values()}:
        for init in (ROOT / top).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            folder = init.parent.relative_to(ROOT).as_posix()
            found.add(folder)
    assert found == set(mapping.values()), f"unlisted packages: {found - set(mapping.values())}"
