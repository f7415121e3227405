"""The Dockerfiles copy what exists, install the right extras, run as non-root, expose the
server's ports and check its readiness route; .dockerignore keeps what they copy."""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

import pytest
import tomllib
from rigserve.server.settings import Settings

from tests.deploy.conftest import DEPLOY, ROOT

DOCKER = DEPLOY / "docker"
IMAGES = ("serve", "gpu", "train")
SETTINGS_ENV = {f"RIGSERVE_{name.upper()}" for name in Settings.model_fields}


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1])
            for ln in joined.splitlines() if ln.strip()]


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def _env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for op, args in instructions:
        if op == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(args))
    return env


def _copy_sources(instructions: list[tuple[str, str]]) -> list[str]:
    sources = []
    for op, args in instructions:
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        if op == "COPY" and "--from" not in args:
            sources += parts[:-1]
    return sources


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path.rstrip("/")).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(Path(p).name, pat.removeprefix("**/"))
               for pat in patterns for p in prefixes)


@pytest.fixture(scope="module", params=IMAGES)
def image(request: pytest.FixtureRequest) -> tuple[str, list[tuple[str, str]]]:
    return request.param, _instructions(DOCKER / f"{request.param}.Dockerfile")


def test_images_are_multi_stage_and_run_as_a_numeric_non_root_user(image) -> None:
    name, instructions = image
    assert sum(op == "FROM" for op, _ in instructions) >= 2, name
    users = [args for op, args in _final_stage(instructions) if op == "USER"]
    assert users
    assert users[-1].split(":")[0].isdigit()
    assert users[-1].split(":")[0] != "0"


def test_every_copied_path_exists_and_survives_dockerignore(image) -> None:
    _, instructions = image
    patterns = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    for source in _copy_sources(instructions):
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"


def test_images_copy_every_package_folder_pip_needs(image) -> None:
    _, instructions = image
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = {d.split("/")[0] for d in pyproject["tool"]["setuptools"]["package-dir"].values()}
    copied = {s.rstrip("/") for s in _copy_sources(instructions)}
    assert folders | {"pyproject.toml", "README.md"} <= copied


@pytest.mark.parametrize("name", ["serve", "gpu"])
def test_serving_images_expose_the_server_ports_and_check_readiness(name: str) -> None:
    instructions = _instructions(DOCKER / f"{name}.Dockerfile")
    final = _final_stage(instructions)
    env = _env(final)
    assert {k for k in env if k.startswith("RIGSERVE_")} <= SETTINGS_ENV
    defaults = Settings.model_fields
    http = int(env.get("RIGSERVE_HTTP_PORT", defaults["http_port"].default))
    grpc = int(env.get("RIGSERVE_GRPC_PORT", defaults["grpc_port"].default))
    exposed = {int(p) for op, args in final if op == "EXPOSE" for p in args.split()}
    assert exposed == {http, grpc}
    health = next(args for op, args in final if op == "HEALTHCHECK")
    assert "/v2/health/ready" in health
    assert "RIGSERVE_HTTP_PORT" in health
    entry = next(args for op, args in final if op == "ENTRYPOINT")
    command = next(args for op, args in final if op == "CMD")
    assert entry == '["rigserve"]'
    assert command == '["serve"]'  # REPO comes from RIGSERVE_REPOSITORY


def test_cpu_serving_image_installs_serve_extras_without_torch() -> None:
    runs = " ".join(a for op, a in _instructions(DOCKER / "serve.Dockerfile") if op == "RUN")
    assert "'.[serve]'" in runs
    assert "train" not in runs
    assert "torch==" not in runs
    assert "gpu" not in runs
    # The build fails if anything pulled torch in transitively.
    assert "! pip show torch" in runs


def test_gpu_image_builds_on_cuda_with_onnxruntime_gpu_and_tensorrt() -> None:
    text = (DOCKER / "gpu.Dockerfile").read_text()
    assert re.search(r"ARG CUDA_IMAGE=nvidia/cuda:12\.\S+-cudnn-runtime", text)
    runs = " ".join(a for op, a in _instructions(DOCKER / "gpu.Dockerfile") if op == "RUN")
    assert "'.[serve,gpu]'" in runs
    assert "onnxruntime-gpu" in runs
    gpu_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["gpu"]
    assert any(dep.startswith("tensorrt") for dep in gpu_extra)


def test_training_image_installs_cpu_torch_and_the_repository_builder() -> None:
    instructions = _instructions(DOCKER / "train.Dockerfile")
    text = " ".join(a for _, a in instructions)
    assert "download.pytorch.org/whl/cpu" in text
    assert "'.[train,serve]'" in text
    assert "deploy/docker/build-repository.sh" in _copy_sources(instructions)
    # The image pins the torch the `train` extra pins (pip would refuse another anyway).
    train_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["train"]
    pin = next(dep.split("==")[1] for dep in train_extra if dep.startswith("torch=="))
    assert f"TORCH_VERSION={pin}" in text


@pytest.mark.parametrize("name", ["serve", "gpu"])
def test_serving_images_name_the_repository_once_as_rigserve_repository(name: str) -> None:
    final = _final_stage(_instructions(DOCKER / f"{name}.Dockerfile"))
    path = _env(final)["RIGSERVE_REPOSITORY"]
    runs = [args for op, args in final if op in ("ENTRYPOINT", "CMD")]
    assert not any(path in args for args in runs), runs
