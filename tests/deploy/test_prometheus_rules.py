"""The Prometheus config and rules pass promtool, and every alert has a unit test firing it."""

from __future__ import annotations

import subprocess

from tests.deploy.conftest import PROMETHEUS_DIR, ROOT, RULE_FILES, load_yaml, rules
from tests.deploy.promql import contract_names, metric_names, unknown_names

ALERT_TESTS = PROMETHEUS_DIR / "tests" / "alerts_test.yml"
# Series Prometheus makes itself rather than scraping them from rigserve.
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"}


def _promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_promtool_accepts_the_compose_scrape_config_and_its_rule_files(promtool: str) -> None:
    result = _promtool(promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    # check config also loads the rule files it names: both must be the ones on disk.
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_rule_files(promtool: str) -> None:
    result = _promtool(promtool, "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_fire_every_alert(promtool: str) -> None:
    result = _promtool(promtool, "test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_that_expects_it_to_fire() -> None:
    fired = {
        case["alertname"]
        for test in load_yaml(ALERT_TESTS)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    alerts = {rule["alert"] for rule in rules("alert")}
    assert alerts, "no alert rules found"
    assert alerts - fired == set(), f"alerts without a test that fires them: {alerts - fired}"


def test_unit_tests_load_the_rule_files_prometheus_loads() -> None:
    configured = {(PROMETHEUS_DIR / p).resolve()
                  for p in load_yaml(PROMETHEUS_DIR / "prometheus.yml")["rule_files"]}
    tested = {(ALERT_TESTS.parent / p).resolve() for p in load_yaml(ALERT_TESTS)["rule_files"]}
    assert configured == tested == {p.resolve() for p in RULE_FILES}


def test_rules_read_only_contract_metrics_and_recorded_series() -> None:
    recorded = {rule["record"] for rule in rules("record")}
    known = contract_names((ROOT / "docs" / "contracts.md").read_text()) | recorded
    exprs = [rule["expr"] for rule in rules("record") + rules("alert")]
    assert unknown_names(exprs, known | PROMETHEUS_OWN) == {}


def test_alert_expressions_use_recorded_series_where_one_exists() -> None:
    # Alerts and the dashboard share one definition of "missing rate" and "p99": an alert
    # that recomputes it inline could silently drift from what operators see.
    recorded = {rule["record"] for rule in rules("record")}
    inline = [rule["alert"] for rule in rules("alert")
              if metric_names(rule["expr"]) & {"rigserve_modality_frames_total",
                                               "rigserve_request_duration_seconds_bucket"}]
    assert inline == []
    assert recorded, "no recording rules found"
