"""The Kubernetes manifests parse, reference each other consistently, and their probes and
ports match what the rigserve server serves and reads from its settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from rigserve.server.settings import Settings

from tests.deploy.conftest import DEPLOY, ROOT, RULE_FILES, load_yaml, load_yaml_docs, strings
from tests.deploy.promql import contract_names

K8S = DEPLOY / "k8s"
SETTINGS_ENV = {f"RIGSERVE_{name.upper()}" for name in Settings.model_fields}
HEALTH = {"livenessProbe": "/v2/health/live", "readinessProbe": "/v2/health/ready",
          "startupProbe": "/v2/health/ready"}


def _docs(folder: Path) -> list[dict]:
    return [doc for path in sorted(folder.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in load_yaml_docs(path)]


def _one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return _docs(K8S)


@pytest.fixture(scope="module")
def container(docs: list[dict]) -> dict:
    return _one(docs, "Deployment", "rigserve")["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module")
def config(docs: list[dict]) -> dict[str, str]:
    return _one(docs, "ConfigMap", "rigserve-config")["data"]


def _ports(container: dict) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


@pytest.mark.parametrize("folder", [K8S, K8S / "triton", K8S / "kserve"], ids=lambda p: p.name)
def test_every_manifest_parses_and_names_its_kind(folder: Path) -> None:
    docs = _docs(folder)
    assert docs
    for doc in docs:
        missing = [key for key in ("apiVersion", "kind") if not doc.get(key)]
        assert missing == [], doc
        assert doc["metadata"]["name"], doc


@pytest.mark.parametrize("folder", [K8S, K8S / "triton"], ids=lambda p: p.name)
def test_kustomization_lists_exactly_the_manifests_in_its_folder(folder: Path) -> None:
    listed = set(load_yaml(folder / "kustomization.yaml")["resources"])
    on_disk = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_configmap_is_a_valid_server_configuration(
        config: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Settings ignores RIGSERVE_* variables it does not know, so a misspelt key would be lost.
    assert set(config) <= SETTINGS_ENV, f"not Settings fields: {set(config) - SETTINGS_ENV}"
    # Settings validates at start-up, as the pod would: the repository must exist, so point
    # it at a stand-in; every other value is taken as the ConfigMap has it.
    (tmp_path / "manifest.json").write_text("{}")
    for key, value in {**config, "RIGSERVE_REPOSITORY": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert (settings.http_port, settings.grpc_port) == (
        int(config["RIGSERVE_HTTP_PORT"]), int(config["RIGSERVE_GRPC_PORT"]))


def test_container_ports_and_args_match_the_configured_server(
        docs: list[dict], container: dict, config: dict[str, str]) -> None:
    assert _ports(container) == {"http": int(config["RIGSERVE_HTTP_PORT"]),
                                 "grpc": int(config["RIGSERVE_GRPC_PORT"])}
    assert container["args"] == ["serve"]  # REPO comes from RIGSERVE_REPOSITORY
    assert container["envFrom"][0]["configMapRef"]["name"] == "rigserve-config"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert config["RIGSERVE_REPOSITORY"].startswith(mounts["models"] + "/")
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes["models"]["persistentVolumeClaim"]["claimName"]
    _one(docs, "PersistentVolumeClaim", claim)


def test_probes_hit_the_health_routes_on_the_http_port(container: dict) -> None:
    for probe, path in HEALTH.items():
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"]) == (path, "http"), probe


def test_pod_runs_as_the_images_non_root_user_and_outlives_its_drain(
        docs: list[dict], container: dict, config: dict[str, str]) -> None:
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    dockerfile = (DEPLOY / "docker" / "serve.Dockerfile").read_text()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert f"USER {pod['securityContext']['runAsUser']}:" in dockerfile
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > float(config["RIGSERVE_DRAIN_TIMEOUT_S"]) + pause


def test_services_select_the_pods_and_target_named_container_ports(
        docs: list[dict], container: dict) -> None:
    labels = _one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    services = [d for d in docs if d["kind"] == "Service"]
    assert {s["metadata"]["name"] for s in services} == {"rigserve", "rigserve-grpc"}
    for service in services:
        assert service["spec"]["selector"].items() <= labels.items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in _ports(container)
            assert port["port"] == _ports(container)[port["targetPort"]]


def test_hpa_pdb_and_servicemonitor_point_at_the_deployment_and_service(docs: list[dict]) -> None:
    deployment = _one(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    hpa = _one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    pods_metrics = [m["pods"]["metric"]["name"] for m in hpa["metrics"] if m["type"] == "Pods"]
    known = contract_names((ROOT / "docs" / "contracts.md").read_text())
    assert set(pods_metrics) <= known
    pdb = _one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    # A drain must never take every replica the HPA keeps at its minimum.
    assert pdb["maxUnavailable"] < hpa["minReplicas"]
    monitor = _one(docs, "ServiceMonitor")["spec"]
    service = _one(docs, "Service", "rigserve")
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["endpoints"]] == ["http"]
    assert monitor["endpoints"][0]["path"] == "/metrics"


def test_triton_serves_the_exports_triton_folder_on_the_shared_claim(docs: list[dict]) -> None:
    triton = _docs(K8S / "triton")
    pod = _one(triton, "Deployment")["spec"]["template"]["spec"]
    server = pod["containers"][0]
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in server["args"])
    mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
    # `rigserve export --triton` writes REPO/triton/rig.<subset>/config.pbtxt + 1/model.onnx.
    assert flags["model-repository"] == f"{mounts['models']}/rig/triton"
    claim = next(v for v in pod["volumes"] if v["name"] == "models")
    _one(docs, "PersistentVolumeClaim", claim["persistentVolumeClaim"]["claimName"])
    ports = _ports(server)
    assert (ports["http"], ports["grpc"], ports["metrics"]) == (
        int(flags["http-port"]), int(flags["grpc-port"]), int(flags["metrics-port"]))
    for probe, path in HEALTH.items():
        assert server[probe]["httpGet"] == {"path": path, "port": "http"}
    service = _one(triton, "Service")
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)


def test_kserve_predictors_serve_the_repository_on_the_ports_they_declare(
        docs: list[dict]) -> None:
    services = {d["metadata"]["name"]: d for d in _docs(K8S / "kserve")}
    custom = services["rigserve"]["spec"]["predictor"]
    container = custom["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert set(env) <= SETTINGS_ENV
    http = int(env["RIGSERVE_HTTP_PORT"])
    assert [p["containerPort"] for p in container["ports"]] == [http]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": HEALTH[probe], "port": http}
    assert container["args"] == ["serve"]  # REPO comes from RIGSERVE_REPOSITORY
    mount = container["volumeMounts"][0]["mountPath"]
    assert env["RIGSERVE_REPOSITORY"].startswith(mount + "/")
    claim = _one(docs, "PersistentVolumeClaim")["metadata"]["name"]
    assert custom["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    triton = services["rigserve-triton"]["spec"]["predictor"]["model"]
    assert triton["modelFormat"]["name"] == "triton"
    assert triton["protocolVersion"] == "v2"
    assert triton["storageUri"] == f"pvc://{claim}/rig/triton"


def test_prometheusrule_carries_the_same_rules_as_the_rule_files(docs: list[dict]) -> None:
    groups = [g for path in RULE_FILES for g in load_yaml(path)["groups"]]
    assert _one(docs, "PrometheusRule")["spec"]["groups"] == groups


def test_each_rigserve_pod_names_its_repository_once_as_rigserve_repository(
        docs: list[dict], config: dict[str, str]) -> None:
    deployment = _one(docs, "Deployment", "rigserve")
    path = config["RIGSERVE_REPOSITORY"]
    assert [*strings(deployment), *config.values()].count(path) == 1
    kserve = next(d for d in _docs(K8S / "kserve") if d["metadata"]["name"] == "rigserve")
    env = {e["name"]: e["value"] for e in kserve["spec"]["predictor"]["containers"][0]["env"]}
    assert strings(kserve).count(env["RIGSERVE_REPOSITORY"]) == 1
