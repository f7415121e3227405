"""Start the real server on free loopback ports and wait until it reports ready.

Two ways, same handle:

* :func:`serve_in_thread` runs uvicorn (and gRPC, when the grpc package provides
  ``create_grpc_server``) in a background thread of the test process: fast, and the
  test can reach ``handle.app.state.service``.
* :func:`serve_in_subprocess` runs ``python -m rigserve serve REPO`` as its own process,
  for what only a process shows (signals, RSS, which modules it imported).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerHandle:
    http_port: int
    grpc_port: int | None
    app: Any = None  # the FastAPI app (thread mode)
    uvicorn: Any = None  # the uvicorn.Server (thread mode): its connections and request tasks
    process: subprocess.Popen[bytes] | None = None  # (subprocess mode)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def http_target(self) -> str:
        """host:port, as tritonclient.http wants it."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str | None:
        return None if self.grpc_port is None else f"127.0.0.1:{self.grpc_port}"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def wait_ready(url: str, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None,
               headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            r = httpx.get(f"{url}/v2/health/ready", timeout=2.0, headers=headers)
            if r.status_code == 200:
                return
            last = r.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"server at {url} not ready after {timeout}s (last: {last})")


@contextlib.contextmanager
def serve_in_thread(repo: Path, *, grpc: bool = False, **settings: Any) -> Iterator[ServerHandle]:
    """uvicorn in a thread on free ports; extra keyword arguments are Settings fields."""
    import uvicorn
    from rigserve.server.rest.app import create_app
    from rigserve.server.settings import Settings

    http_port = free_port()
    grpc_port = free_port() if grpc else None
    cfg = Settings(repository=repo, host="127.0.0.1", http_port=http_port, grpc_port=grpc_port,
                   **settings)
    app = create_app(cfg)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=http_port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        wait_ready(f"http://127.0.0.1:{http_port}",
                   headers={"x-api-key": cfg.api_keys[0]} if cfg.api_keys else None)
        yield ServerHandle(http_port, grpc_port, app=app, uvicorn=server)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def serve_in_subprocess(repo: Path, *args: str, grpc: bool = False,
                        env: dict[str, str] | None = None) -> Iterator[ServerHandle]:
    """``python -m rigserve serve REPO`` on free ports; stopped with SIGTERM (graceful)."""
    http_port = free_port()
    grpc_port = free_port() if grpc else None
    cmd = [sys.executable, "-m", "rigserve", "serve", str(repo), "--host", "127.0.0.1",
           "--http-port", str(http_port)]
    cmd += ["--grpc-port", str(grpc_port)] if grpc_port else ["--no-grpc"]
    # A file, not a pipe: a chatty server must never block on a full pipe buffer.
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen([*cmd, *args], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    try:
        try:
            wait_ready(f"http://127.0.0.1:{http_port}", process=proc)
        except (RuntimeError, TimeoutError) as exc:
            log.seek(0)
            raise RuntimeError(f"{exc}; server output:\n{log.read().decode()[-4000:]}") from exc
        yield ServerHandle(http_port, grpc_port, process=proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
