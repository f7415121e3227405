"""The Grafana dashboard is well formed, uses the provisioned data source, shows every
metric of the contract, and queries nothing that rigserve or the recording rules lack."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.deploy.conftest import DASHBOARD_FILES, DEPLOY, ROOT, load_yaml, rules
from tests.deploy.promql import contract_names, metric_names, template_query_expr, unknown_names

PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE"}
GRID_WIDTH = 24


def _panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def dashboard_exprs(dashboard: dict) -> list[str]:
    """Every PromQL expression: panel targets, variable queries and annotations."""
    exprs = [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]
    for var in dashboard.get("templating", {}).get("list", []):
        if var["type"] == "query":
            query = var["query"]
            exprs.append(query["query"] if isinstance(query, dict) else query)
    exprs += [a["expr"] for a in dashboard.get("annotations", {}).get("list", []) if "expr" in a]
    return exprs


@pytest.fixture(scope="module", params=DASHBOARD_FILES, ids=lambda p: p.name)
def dashboard(request: pytest.FixtureRequest) -> dict:
    return json.loads(request.param.read_text())


def test_there_is_a_dashboard_and_the_provider_loads_its_folder() -> None:
    assert [p.name for p in DASHBOARD_FILES] == ["rigserve.json"]


def test_panels_have_unique_ids_queries_and_fit_the_grid_without_overlap(dashboard: dict) -> None:
    panels = list(_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in panels:
        if p["type"] != "row":
            assert p.get("targets"), f"panel {p['title']!r} has no query"
            assert all(t["expr"].strip() for t in p["targets"]), p["title"]
        g = p["gridPos"]
        assert g["x"] >= 0, p["title"]
        assert g["x"] + g["w"] <= GRID_WIDTH, p["title"]
        mine = {(g["x"] + dx, g["y"] + dy) for dx in range(g["w"]) for dy in range(g["h"])}
        assert not mine & cells, f"panel {p['title']!r} overlaps another"
        cells |= mine


def test_queries_use_the_provisioned_prometheus_through_the_datasource_variable(
        dashboard: dict) -> None:
    provisioned = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")
    source = provisioned["datasources"][0]
    variable = next(v for v in dashboard["templating"]["list"] if v["type"] == "datasource")
    assert variable["query"] == source["type"] == "prometheus"
    assert variable["current"]["value"] == source["uid"]
    ref = {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
    for p in _panels(dashboard):
        if p["type"] != "row":
            assert p["datasource"] == ref, p["title"]
            assert all(t["datasource"] == ref for t in p["targets"]), p["title"]


def test_queries_read_only_contract_metrics_and_recorded_series(dashboard: dict) -> None:
    recorded = {rule["record"] for rule in rules("record")}
    known = contract_names((ROOT / "docs/contracts.md").read_text()) | recorded | PROMETHEUS_OWN
    exprs = [template_query_expr(e) for e in dashboard_exprs(dashboard)]
    assert unknown_names(exprs, known) == {}


def test_every_contract_metric_appears_on_the_dashboard(dashboard: dict) -> None:
    # Directly, or through a recording rule the dashboard reads.
    recorded = {rule["record"]: rule["expr"] for rule in rules("record")}
    used: set[str] = set()
    for expr in dashboard_exprs(dashboard):
        for name in metric_names(template_query_expr(expr)):
            used |= metric_names(recorded[name]) if name in recorded else {name}
    contract = (ROOT / "docs/contracts.md").read_text()
    families = set(re.findall(r"^\|\s*`(rigserve_\w+)`", contract, re.M))
    unseen = {f for f in families if not any(u.startswith(f.removesuffix("_total"))
                                             for u in used)}
    assert unseen == set()


@pytest.mark.parametrize("quantile", ["0.50", "0.95", "0.99"])
def test_latency_quantile_per_subset_is_charted(dashboard: dict, quantile: str) -> None:
    pattern = re.compile(rf"histogram_quantile\({quantile}, sum by \(le, subset\) \(rate\("
                         r"rigserve_request_duration_seconds_bucket")
    assert any(pattern.search(e) for e in dashboard_exprs(dashboard))
