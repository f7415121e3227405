"""Every rigserve command line the deploy files run (compose, Dockerfiles, Kubernetes, the
repository builder) is accepted by the real `rigserve` argument parser."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from rigserve.cli import build_parser
from tests.deploy.conftest import DEPLOY, ROOT, load_yaml, load_yaml_docs

BUILDER = DEPLOY / "docker" / "build-repository.sh"
_DEFAULT = re.compile(r'^(\w+)="\$\{\1:-(.*)\}"$', re.M)
_SH_VAR = re.compile(r"\$\{?(\w+)\}?")


def _compose_commands() -> dict[str, list[str]]:
    services = load_yaml(ROOT / "docker-compose.yml")["services"]
    found = {}
    for name, service in services.items():
        if str(service.get("image", "")).startswith("rigserve") and "entrypoint" not in service:
            # ${VAR:-default} as compose interpolates it with nothing set.
            found[f"compose:{name}"] = [re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(part))
                                        for part in service["command"]]
    return found


def _dockerfile_commands() -> dict[str, list[str]]:
    found = {}
    for path in sorted((DEPLOY / "docker").glob("*.Dockerfile")):
        text = path.read_text()
        entry = json.loads(re.findall(r"^ENTRYPOINT (.*)$", text, re.M)[-1])
        command = json.loads(re.findall(r"^CMD (.*)$", text, re.M)[-1])
        assert entry == ["rigserve"], path
        found[f"docker:{path.stem}"] = command
    return found


def _k8s_commands() -> dict[str, list[str]]:
    found = {}
    for path in sorted((DEPLOY / "k8s").rglob("*.yaml")):
        for doc in load_yaml_docs(path):
            spec = doc.get("spec", {})
            pod = spec.get("template", {}).get("spec") or spec.get("predictor") or {}
            for container in pod.get("containers", []):
                if str(container.get("image", "")).startswith("rigserve"):
                    found[f"k8s:{doc['metadata']['name']}"] = container["args"]
    return found


def _builder_commands() -> dict[str, list[str]]:
    """The script's `rigserve ...` lines with its variables at their defaults."""
    text = BUILDER.read_text()
    values = dict(_DEFAULT.findall(text)) | {"staging": "/models/.rig.partial"}
    found = {}
    for line in text.splitlines():
        if line.startswith("rigserve "):
            # Quotes only keep paths whole here; unquoted *_ARGS split into words, as sh does.
            expanded = _SH_VAR.sub(lambda m: values[m.group(1)], line.replace('"', ""))
            words = shlex.split(expanded)[1:]
            found[f"builder:{words[1]}"] = words
    return found


COMMANDS = {**_compose_commands(), **_dockerfile_commands(), **_k8s_commands(),
            **_builder_commands()}


def test_every_deploy_file_that_runs_rigserve_was_found() -> None:
    assert {"compose:rigserve", "compose:edge", "docker:serve", "docker:gpu", "docker:train",
            "k8s:rigserve", "builder:simulate", "builder:train", "builder:export"} <= set(COMMANDS)


@pytest.mark.parametrize("where", sorted(COMMANDS))
def test_rigserve_parser_accepts_the_command(where: str, capsys: pytest.CaptureFixture) -> None:
    argv = COMMANDS[where]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        if argv == ["--help"] and exc.code == 0:
            return
        pytest.fail(f"{where}: `rigserve {shlex.join(argv)}` rejected:\n{capsys.readouterr().err}")
    assert callable(args.handler)
