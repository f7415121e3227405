"""`rigserve serve` misuse: one line naming the bad value, exit 2, before any server starts."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from rigserve.cli import main
from tests.core.cli_errors import assert_one_line_error
from tests.server.repo_factory import build_tiny_repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_repo(tmp_path_factory.mktemp("repo"), ("lidar", "wifi"))


def _broken(tmp_path: Path, repo: Path, edit: str) -> Path:
    bad = tmp_path / edit
    if edit == "tampered":  # an engine file changed after export
        shutil.copytree(repo, bad)
        with next((bad / "engines").glob("*.onnx")).open("ab") as f:
            f.write(b"\0")
        return bad
    bad.mkdir()
    manifest = json.loads((repo / "manifest.json").read_text())
    if edit == "truncated":
        (bad / "manifest.json").write_text(json.dumps(manifest)[:200])
        return bad
    if edit == "no-outputs":
        del manifest["outputs"]
    # "no-engine-files": the manifest alone, its engines/ folder not copied
    (bad / "manifest.json").write_text(json.dumps(manifest))
    return bad


@pytest.mark.parametrize(("edit", "message"), [
    ("truncated", "manifest.json: unreadable manifest: "),
    ("no-outputs", "manifest.json: schema violation at (root): 'outputs' is a required property"),
    ("no-engine-files", "does not exist in the repository"),
    ("tampered", "sha256 mismatch for 'engines/"),
])
def test_serve_names_what_is_wrong_with_a_corrupt_or_partial_repository(
        tmp_path: Path, repo: Path, edit: str, message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(_broken(tmp_path, repo, edit)), "--http-port", "0",
                 "--grpc-port", "0"]) == 2
    assert_one_line_error(capsys.readouterr().err, "serve", message)


@pytest.mark.parametrize(("argv", "message"), [
    (["--http-port", "-1"], "--http-port / RIGSERVE_HTTP_PORT: Input should be greater than or "
                            "equal to 0 (got -1)"),
    (["--max-batch-size", "0"], "--max-batch-size / RIGSERVE_MAX_BATCH_SIZE: Input should be "
                                "greater than or equal to 1 (got 0)"),
    (["--precision", "fp8"], "--precision / RIGSERVE_PRECISION: Input should be 'fp16', 'fp32' "
                             "or 'int8' (got 'fp8')"),
    (["--http-port", "8000", "--grpc-port", "8000"], "http_port and grpc_port are both 8000"),
])
def test_serve_settings_errors_are_one_line_naming_the_flag(
        repo: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(repo), *argv]) == 2
    assert_one_line_error(capsys.readouterr().err, "serve", message)


@pytest.mark.parametrize("flag", ["--http-port", "--grpc-port"])
def test_serve_refuses_a_port_in_use_before_starting(
        repo: Path, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--http-port": "0", "--grpc-port": "0", flag: str(port)}
        argv = [arg for pair in ports.items() for arg in pair]
        assert main(["serve", str(repo), "--host", "127.0.0.1", *argv]) == 2
    assert_one_line_error(capsys.readouterr().err, "serve",
                          f"{flag} {port}: cannot bind 127.0.0.1:{port}: ")
