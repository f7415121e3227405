"""docker-compose.yml parses, and every file, service, volume and port it names lines up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rigserve.server.settings import Settings

from tests.deploy.conftest import PROMETHEUS_DIR, ROOT, load_yaml, strings

COMPOSE = ROOT / "docker-compose.yml"
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with nothing set in the environment."""
    return _VAR.sub(lambda m: m.group(2) or "", value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE)


def _env(service: dict) -> dict[str, str]:
    return {k: _interpolate(str(v)) for k, v in service.get("environment", {}).items()}


def _mounts(service: dict) -> list[tuple[str, str]]:
    pairs = []
    for spec in service.get("volumes", []):
        source, target = _interpolate(spec).split(":")[:2]
        pairs.append((source, target))
    return pairs


def _published(service: dict) -> dict[int, int]:
    """container port -> host port."""
    return {int(c): int(h) for h, c in (p.split(":") for p in service.get("ports", []))}


def test_compose_has_the_stack_and_the_edge_rig_is_optional(compose: dict) -> None:
    services = compose["services"]
    assert {"repository-builder", "rigserve", "prometheus", "grafana", "edge"} <= set(services)
    assert services["edge"].get("profiles") == ["edge"]
    for name in ("repository-builder", "rigserve", "prometheus", "grafana"):
        assert "profiles" not in services[name], f"{name} must start with a plain `up`"


def test_every_build_context_dockerfile_and_bind_mount_exists(compose: dict) -> None:
    checked = 0
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = ROOT / build["context"]
            assert (context / build["dockerfile"]).is_file(), f"{name}: {build}"
            checked += 1
        for source, _ in _mounts(service):
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
                checked += 1
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
    assert checked >= 8


def test_depends_on_names_services_and_waits_for_the_builder_and_health(compose: dict) -> None:
    services = compose["services"]
    for name, service in services.items():
        deps = service.get("depends_on", [])
        assert set(deps) <= set(services), f"{name} depends on unknown {set(deps) - set(services)}"
    assert services["rigserve"]["depends_on"]["repository-builder"]["condition"] == (
        "service_completed_successfully")
    assert services["edge"]["depends_on"]["rigserve"]["condition"] == "service_healthy"


def test_rigserve_env_is_valid_settings_and_ports_match_what_is_published(
        compose: dict, tmp_path: Path) -> None:
    service = compose["services"]["rigserve"]
    env = _env(service)
    fields = {f"RIGSERVE_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, f"not Settings fields: {set(env) - fields}"
    http, grpc = int(env["RIGSERVE_HTTP_PORT"]), int(env["RIGSERVE_GRPC_PORT"])
    assert _published(service) == {http: 8000, grpc: 8001}
    assert service["command"] == ["serve"]  # REPO comes from RIGSERVE_REPOSITORY
    health = " ".join(service["healthcheck"]["test"])
    assert f"127.0.0.1:{http}/v2/health/ready" in health


def test_repository_builder_writes_where_rigserve_reads(compose: dict) -> None:
    builder, server = compose["services"]["repository-builder"], compose["services"]["rigserve"]
    builder_env = _env(builder)
    written = f"{builder_env['MODELS_DIR']}/{builder_env['MODEL_NAME']}"
    assert written == _env(server)["RIGSERVE_REPOSITORY"]
    # The same volume, writable for the job and read-only for the server.
    assert dict(_mounts(builder))["models"] == builder_env["MODELS_DIR"]
    assert dict(_mounts(server))["models"] == builder_env["MODELS_DIR"]
    assert any(spec.endswith(":ro") for spec in server["volumes"])
    script = ROOT / "deploy" / "docker" / "build-repository.sh"
    assert builder["entrypoint"][-1] == "/usr/local/bin/build-repository"
    assert "build-repository.sh /usr/local/bin/build-repository" in (
        ROOT / builder["build"]["context"] / builder["build"]["dockerfile"]).read_text()
    text = script.read_text()
    for step in ("rigserve -v simulate", "rigserve -v train", "rigserve -v export"):
        assert step in text


def test_prometheus_scrapes_the_rigserve_service_on_its_http_port(compose: dict) -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "rigserve")
    http = int(_env(compose["services"]["rigserve"])["RIGSERVE_HTTP_PORT"])
    assert job["static_configs"][0]["targets"] == [f"rigserve:{http}"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    mounts = dict(_mounts(compose["services"]["prometheus"]))
    command = " ".join(compose["services"]["prometheus"]["command"])
    assert f"--config.file={mounts['./deploy/prometheus/prometheus.yml']}" in command
    # rule_files are relative to the config file: rules/ must be mounted beside it.
    assert mounts["./deploy/prometheus/rules"] == "/etc/prometheus/rules"


def test_grafana_provisioning_points_at_the_prometheus_service_and_mounted_dashboards(
        compose: dict) -> None:
    grafana = compose["services"]["grafana"]
    mounts = dict(_mounts(grafana))
    datasources = load_yaml(ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml")
    url = datasources["datasources"][0]["url"]
    assert url == f"http://prometheus:{next(iter(_published(compose['services']['prometheus'])))}"
    providers = load_yaml(ROOT / "deploy/grafana/provisioning/dashboards/rigserve.yml")
    assert providers["providers"][0]["options"]["path"] == mounts["./deploy/grafana/dashboards"]
    home = _env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(mounts["./deploy/grafana/dashboards"] + "/")
    assert (ROOT / "deploy/grafana/dashboards" / Path(home).name).is_file()


def test_edge_rig_streams_to_the_rigserve_grpc_port(compose: dict) -> None:
    edge = compose["services"]["edge"]
    command = [_interpolate(str(part)) for part in edge["command"]]
    assert command[0] == "edge"
    assert "--simulate" in command
    grpc = _env(compose["services"]["rigserve"])["RIGSERVE_GRPC_PORT"]
    assert command[command.index("--target") + 1] == f"rigserve:{grpc}"


def test_host_ports_are_unique(compose: dict) -> None:
    published = [h for s in compose["services"].values() for h in _published(s).values()]
    assert len(published) == len(set(published)) >= 4


def test_rigserve_names_its_repository_once_as_rigserve_repository(compose: dict) -> None:
    service = compose["services"]["rigserve"]
    path = _env(service)["RIGSERVE_REPOSITORY"]
    assert [_interpolate(v) for v in strings(service)].count(path) == 1
    assert COMPOSE.read_text().count(path) == 1
