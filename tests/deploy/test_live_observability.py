"""Against a running rigserve: the probe routes answer, every dashboard and rule query
reads metrics that /metrics exports, and a real Prometheus scraping the server computes
the missing-sensor rate the test caused."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import DASHBOARD_FILES, DEPLOY, rules
from tests.deploy.prometheus_process import PrometheusAPI, run_prometheus
from tests.deploy.promql import exposed_names, template_query_expr, unknown_names
from tests.deploy.test_grafana_dashboard import dashboard_exprs
from tests.server.live_server import ServerHandle, free_port, serve_in_thread
from tests.server.repo_factory import build_tiny_repo, sample_files

PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    repo = build_tiny_repo(tmp_path_factory.mktemp("repo"))
    with serve_in_thread(repo, max_queue_delay_ms=0.0) as handle:
        yield handle


def _infer(server: ServerHandle, *, without: tuple[str, ...] = ()) -> dict:
    files = {m: (f"frame001.{m}", data) for m, data in sample_files().items() if m not in without}
    response = httpx.post(f"{server.url}/v1/rigs/r1/infer", files=files, timeout=30.0)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready", "/metrics"])
def test_probe_and_scrape_routes_of_the_manifests_answer(server: ServerHandle, path: str) -> None:
    assert httpx.get(f"{server.url}{path}", timeout=5.0).status_code == 200


def test_dashboard_and_rules_read_only_metrics_the_live_server_exports(
        server: ServerHandle) -> None:
    _infer(server, without=("lidar",))
    live = exposed_names(httpx.get(f"{server.url}/metrics", timeout=5.0).text)
    recorded = {rule["record"] for rule in rules("record")}
    known = live | recorded | PROMETHEUS_OWN
    exprs = [template_query_expr(e) for path in DASHBOARD_FILES
             for e in dashboard_exprs(json.loads(path.read_text()))]
    exprs += [rule["expr"] for rule in rules("record") + rules("alert")]
    assert len(exprs) > 30
    assert unknown_names(exprs, known) == {}


def _sample_time(prom: PrometheusAPI, expected_total: int) -> float:
    """Timestamp of the latest scrape in which lidar's frame counters sum to the total."""
    selector = 'rigserve_modality_frames_total{modality="lidar"}'

    def seen() -> float | None:
        if prom.scalar(f"sum({selector})") != expected_total:
            return None
        return prom.scalar(f"max(timestamp({selector}))")

    return prom.wait_for(f"lidar frames total {expected_total}", seen)


def test_prometheus_scraping_rigserve_reports_the_lidar_missing_rate_the_test_caused(
        server: ServerHandle, prometheus_bin: str, tmp_path: Path) -> None:
    def drive(n: int, k: int) -> None:  # n requests, lidar left out of the first k
        for i in range(n):
            _infer(server, without=("lidar",) if i < k else ())

    before = int(sum(_frames_of(server, "lidar").values()))
    with run_prometheus(prometheus_bin, tmp_path, server.http_target) as prom:
        # Warm-up gives every series a baseline sample, so the rate below sees only the
        # measured phase; both phases mix absent and present lidar frames. Its counts are
        # large next to the measured phase's so rate()'s extrapolation never clamps a
        # series at zero, which would skew one series' rate and not the other's.
        warm = 20
        drive(warm, warm // 2)
        start = _sample_time(prom, before + warm)
        n, k = 10, 3
        drive(n, k)
        end = _sample_time(prom, before + warm + n)
        # A window reaching back past the baseline scrape by half a scrape interval, so it
        # never takes in the scrape before it (which may hold a partial warm-up).
        window = f"{int((end - start) * 1000) + prom.interval_ms // 2}ms"
        frames = "rigserve_modality_frames_total"
        contract = (f'sum by (modality) (rate({frames}{{state!="present"}}[{window}]))'
                    f" / sum by (modality) (rate({frames}[{window}]))")
        missing = prom.by_label(contract, "modality", at=end)
        assert missing["lidar"] == pytest.approx(k / n, abs=1e-9)
        # The recording rule's form also reports sensors that were never missing, as 0.
        record = next(r for r in rules("record")
                      if r["record"] == "modality:rigserve_missing_ratio:rate5m")
        recorded = prom.by_label(record["expr"].replace("[5m]", f"[{window}]"), "modality",
                                 at=end)
        assert recorded == pytest.approx(
            {"depth": 0.0, "lidar": k / n, "mmwave": 0.0, "wifi": 0.0}, abs=1e-9)
        # Every recording and alert rule evaluated against the real series without error.
        groups = prom.wait_for("every rule evaluated once", lambda: _evaluated(prom))
        health = {r.get("name", r.get("alert")): r["health"] for g in groups for r in g["rules"]}
        assert set(health.values()) == {"ok"}, health


def _evaluated(prom: PrometheusAPI) -> list[dict] | None:
    groups = prom.rule_groups()
    # Go's zero time marks a rule that has not been evaluated yet.
    pending = [r for g in groups for r in g["rules"] if r["lastEvaluation"].startswith("0001")]
    return groups if groups and not pending else None


def _frames_of(server: ServerHandle, modality: str) -> dict[str, float]:
    """state -> count of this modality's frames, read straight from /metrics."""
    counts: dict[str, float] = {}
    for line in httpx.get(f"{server.url}/metrics", timeout=5.0).text.splitlines():
        if line.startswith("rigserve_modality_frames_total{") and f'modality="{modality}"' in line:
            state = line.split('state="', 1)[1].split('"', 1)[0]
            counts[state] = float(line.rsplit(" ", 1)[1])
    return counts


@pytest.mark.parametrize("image", ["serve", "gpu"])
def test_dockerfile_healthcheck_passes_on_a_ready_server_and_fails_without_one(
        server: ServerHandle, image: str) -> None:
    text = (DEPLOY / "docker" / f"{image}.Dockerfile").read_text()
    command = json.loads(re.search(r"HEALTHCHECK .*?CMD (\[[^\n]*\])", text, re.S).group(1))
    command[0] = sys.executable  # the image's python / python3
    ok = subprocess.run(command, env={"RIGSERVE_HTTP_PORT": str(server.http_port)},
                        capture_output=True, timeout=10, check=False)
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run(command, env={"RIGSERVE_HTTP_PORT": str(free_port())},
                          capture_output=True, timeout=10, check=False)
    assert down.returncode != 0
