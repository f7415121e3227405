"""A real Prometheus (the Debian binary) on a free loopback port, scraping given targets
with the project's own rule files, and a small client for its HTTP query API."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.deploy.conftest import PROMETHEUS_DIR, load_yaml
from tests.server.live_server import free_port


@dataclass
class PrometheusAPI:
    url: str
    log: Path
    interval_ms: int  # scrape and rule evaluation interval

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; raises with Prometheus' own error text when the PromQL is bad."""
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        body = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=5.0).json()
        if body["status"] != "success":
            raise AssertionError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]["result"]

    def by_label(self, expr: str, label: str, at: float | None = None) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr, at)}

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def rule_groups(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/api/v1/rules", timeout=5.0).json()["data"]["groups"]

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Poll until `check()` returns something truthy; its value is returned."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"Prometheus: {what} not seen within {timeout}s; "
                           f"log:\n{self.log.read_text()[-3000:]}")


def write_config(folder: Path, target: str, interval_ms: int) -> Path:
    """deploy/prometheus/prometheus.yml with the rigserve job pointed at `target`."""
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    interval = f"{interval_ms}ms"
    config["global"] |= {"scrape_interval": interval, "evaluation_interval": interval}
    config["rule_files"] = [str((PROMETHEUS_DIR / f).resolve()) for f in config["rule_files"]]
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == "rigserve"]
    jobs[0]["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = jobs
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def run_prometheus(binary: str, folder: Path, target: str,
                   interval_ms: int = 500) -> Iterator[PrometheusAPI]:
    """Prometheus scraping `target` (host:port) every `interval_ms`.

    Its first scrape comes about 5 s after start: the discovery manager batches target
    updates, static ones included, on a 5 s tick. Do other work meanwhile.
    """
    config = write_config(folder, target, interval_ms)
    port = free_port()
    log = folder / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT)
    api = PrometheusAPI(f"http://127.0.0.1:{port}", log, interval_ms)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited {proc.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{api.url}/-/ready", timeout=1.0).status_code == 200
            return False

        api.wait_for("readiness", ready)
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
