"""`rigserve serve` as a child process on loopback, ready before it is handed out.

The demo and the serving benchmark both drive a real server in its own process (so its
memory, CPU and imports are its own); this is the one place that starts, waits for and
stops it.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int = 0) -> int:
    """``preferred`` when it is free; otherwise (or for 0) a free port the OS picks."""
    if preferred and port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ServeProcess:
    proc: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@contextlib.contextmanager
def serve_process(repo: Path, *, http_port: int = 0, grpc_port: int = 0,
                  extra: Sequence[str] = (), log: Path | None = None,
                  timeout_s: float = 120.0) -> Iterator[ServeProcess]:
    """Start ``rigserve serve REPO`` (ports: preferred, or free ones), wait until
    ``/v2/health/ready`` answers 200, and stop it gracefully (SIGINT) on exit."""
    http_port, grpc_port = pick_port(http_port), pick_port(grpc_port)
    cmd = [sys.executable, "-m", "rigserve", "serve", str(repo), "--host", "127.0.0.1",
           "--http-port", str(http_port), "--grpc-port", str(grpc_port),
           "--log-level", "warning", *extra]
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(log.open("wb")) if log else subprocess.DEVNULL
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        handle = ServeProcess(proc, http_port, grpc_port)
        try:
            _wait_ready(handle, timeout_s, log)
            yield handle
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_ready(handle: ServeProcess, timeout_s: float, log: Path | None) -> None:
    import httpx

    where = f"; see {log}" if log else ""
    deadline = time.monotonic() + timeout_s
    while True:
        if handle.proc.poll() is not None:
            raise RuntimeError(f"the server exited with {handle.proc.returncode}{where}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{handle.url}/v2/health/ready", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server was not ready after {timeout_s:.0f} s{where}")
        time.sleep(0.1)
