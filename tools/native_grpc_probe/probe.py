"""What a native C++ gRPC front end would cost rigserve at concurrency 1, beside Python's.

Issue 6 asks for gRPC unary p50 <= floor + 0.5 ms at concurrency 1, where the floor is
the engine alone (ONNX Runtime, in process, batch 1). A bare Python grpc.aio server that
only decodes, runs the engine and encodes already spends more than that, so no Python
gRPC front end can meet the target on this machine. This probe measures what a native
one costs instead, with Triton's perf_analyzer (C++) as the client:

  floor                ONNX Runtime in this process, 1 thread, back to back (no transport)
  native_sync          C++ gRPC sync API, ModelInfer checks inputs, fixed outputs, no engine
  native_cb            the same on the C++ callback API
  native_sync_busyN    native_sync plus an N us busy-wait standing in for the engine
  bare                 python -m rigserve.bench._bare_grpc: grpc.aio + the real engine
  rigserve             rigserve serve REPO (REST and gRPC), the product

It writes perf_analyzer's input (build_target's tensors) under build/native_grpc_probe/,
starts every server itself on free ports, runs interleaved rounds (the ORT floor first in
each round, the server order reversed every other round; it waits for an idle machine
before each run and repeats a run during which other processes used > 0.3 CPU-s), prints
the table and a summary, writes build/native_grpc_probe/results.json and stops every
server it started. Server CPU is /proc/PID/stat utime+stime over the whole perf_analyzer
run divided by the requests the server answered (its ModelStatistics, warm-up included).

Build the native server first (tools/native_grpc_probe/build.sh), or run `make
native-probe`, which does both. Not part of rigserve, its tests or CI.
"""

# ruff: noqa: T201  (a command-line tool: its table goes to stdout)

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as tg
from tritonclient.utils import InferenceServerException

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "native_grpc_probe"
NATIVE = OUT / "native_server"
TICK = os.sysconf("SC_CLK_TCK")
FLOOR = "floor (ORT in-process, 1 thread)"


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    pid: int


# ---- CPU accounting ------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def system_busy_s() -> float:
    """Non-idle CPU seconds of the whole machine so far."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / TICK


def children_cpu_s() -> float:
    k = resource.getrusage(resource.RUSAGE_CHILDREN)
    return k.ru_utime + k.ru_stime


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


# ---- servers -------------------------------------------------------------------------------


def wait_ready(proc: subprocess.Popen[bytes], port: int, name: str,
               timeout_s: float = 120.0) -> None:
    """Until the server on ``port`` answers ServerReady (or died, or timed out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {OUT / name}.log")
        client = tg.InferenceServerClient(f"127.0.0.1:{port}")
        try:
            with contextlib.suppress(InferenceServerException):  # not listening yet
                if client.is_server_ready():
                    return
        finally:
            client.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not ready after {timeout_s:.0f} s")
        time.sleep(0.1)


@contextlib.contextmanager
def native_server(name: str, model: str, api: str, busy_us: int = 0) -> Any:
    from rigserve.serve_process import pick_port

    port = pick_port()
    cmd = [str(NATIVE), "--port", str(port), "--api", api, "--model", model,
           "--busy-us", str(busy_us)]
    with (OUT / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(proc, port, name)
            yield Server(name, port, proc.pid)
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_metadata(server: Server, model: str, tensors: dict[str, np.ndarray]) -> None:
    """The server's inputs are the tensors perf_analyzer will send (name and shape)."""
    client = tg.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        meta = client.get_model_metadata(model)
    finally:
        client.close()
    got = {t.name: [int(d) for d in t.shape[1:]] for t in meta.inputs}
    want = {n: list(a.shape[1:]) for n, a in tensors.items()}
    if got != want:
        raise RuntimeError(f"{server.name} serves inputs {got}, the probe sends {want}")


# ---- measurements --------------------------------------------------------------------------


def served(port: int, model: str) -> int:
    client = tg.InferenceServerClient(f"127.0.0.1:{port}")
    try:
        return int(client.get_inference_statistics(model).model_stats[0].inference_count)
    finally:
        client.close()


def run_pa(pa: Any, port: int, model: str, requests: int) -> dict[str, float]:
    """One perf_analyzer gRPC run at concurrency 1, as `rigserve bench serve` runs it."""
    report = OUT / f"pa_{port}.csv"
    cmd = [pa.exe, "-m", model, "-u", f"127.0.0.1:{port}", "-i", "grpc",
           "--input-data", str(OUT / "data.json"), "--concurrency-range", "1",
           "--measurement-mode", "count_windows",
           "--measurement-request-count", str(requests), "-f", str(report)]
    for attempt in range(3):  # perf_analyzer gives up when its windows differ by > 10 %
        r = subprocess.run(cmd, capture_output=True, text=True, env=pa.env, timeout=600,
                           check=False)
        if r.returncode == 0:
            break
        last = (r.stdout + r.stderr).strip().splitlines()[-1:] or ["?"]
        print(f"  perf_analyzer on port {port} failed (attempt {attempt + 1}): {last[0]}",
              flush=True)
    else:
        raise RuntimeError((r.stdout + r.stderr)[-800:])
    with report.open() as f:
        (row,) = list(csv.DictReader(f))
    return {"p50_ms": int(row["p50 latency"]) / 1e3, "p90_ms": int(row["p90 latency"]) / 1e3,
            "p95_ms": int(row["p95 latency"]) / 1e3, "p99_ms": int(row["p99 latency"]) / 1e3,
            "req_s": float(row["Inferences/Second"])}


def measure_server(server: Server, pa: Any, model: str, requests: int) -> dict[str, Any]:
    n0, c0, b0, k0 = served(server.port, model), cpu_s(server.pid), system_busy_s(), \
        children_cpu_s()
    t0 = time.perf_counter()
    res: dict[str, Any] = dict(run_pa(pa, server.port, model, requests))
    wall = time.perf_counter() - t0
    k1, c1, b1 = children_cpu_s(), cpu_s(server.pid), system_busy_s()
    n = served(server.port, model) - n0
    client, srv = k1 - k0, c1 - c0
    res.update(name=server.name, served=n, wall_s=wall,
               server_cpu_ms_per_req=1e3 * srv / n, client_cpu_ms_per_req=1e3 * client / n,
               # machine busy time not explained by the server and perf_analyzer
               other_cpu_s=(b1 - b0) - srv - client, loadavg=loadavg())
    return res


def measure_floor(engine: Any, tensors: dict[str, np.ndarray], requests: int
                  ) -> dict[str, Any]:
    from rigserve.bench.serve import measure_floor as engine_runs

    b0, own0 = system_busy_s(), time.process_time()
    lat, wall = engine_runs(engine, tensors, requests)
    own = time.process_time() - own0
    ms = np.array(lat) * 1e3
    p50, p90, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 90, 95, 99))
    return {"name": FLOOR, "p50_ms": p50, "p90_ms": p90, "p95_ms": p95, "p99_ms": p99,
            "req_s": requests / wall, "served": requests, "wall_s": wall,
            "server_cpu_ms_per_req": 1e3 * own / requests, "client_cpu_ms_per_req": None,
            "other_cpu_s": (system_busy_s() - b0) - own, "loadavg": loadavg()}


def wait_quiet(max_wait_s: float = 300.0) -> float:
    """Until the machine is idle (< 5 % of one core over 1 s), at most ``max_wait_s``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_wait_s:
        b0 = system_busy_s()
        time.sleep(1.0)
        if system_busy_s() - b0 < 0.05:
            break
    return time.monotonic() - t0


def undisturbed(measure: Callable[[], dict[str, Any]], limit_s: float = 0.3,
                tries: int = 5) -> dict[str, Any]:
    """``measure()``, repeated while other processes used > ``limit_s`` CPU during it."""
    for attempt in range(1, tries + 1):
        wait_quiet()
        r = measure()
        r["attempts"] = attempt
        if r["other_cpu_s"] <= limit_s:
            return r
        print(f"  disturbed ({r['name']}: other CPU {r['other_cpu_s']:.2f} s), repeating",
              flush=True)
    r["name"] += " [DISTURBED]"
    return r


# ---- report --------------------------------------------------------------------------------


def row_line(r: dict[str, Any]) -> str:
    cli = r["client_cpu_ms_per_req"]
    cli_s = f"{cli:8.3f}" if cli is not None else f"{'-':>8}"
    return (f"{r['round']:>5} {r['name']:<34} {r['p50_ms']:6.3f} {r['p90_ms']:6.3f} "
            f"{r['p95_ms']:6.3f} {r['p99_ms']:6.3f} {r['req_s']:7.0f} "
            f"{r['server_cpu_ms_per_req']:8.3f} {cli_s} {r['other_cpu_s']:7.2f} "
            f"{r['served']:>6}")


def summarize(rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """Per name over all rounds: median p50/p99/server CPU, the p50 range, and how many of
    its rows stayed disturbed after every repeat."""
    def base(r: dict[str, Any]) -> str:
        return str(r["name"]).removesuffix(" [DISTURBED]")

    out = []
    for name in [FLOOR, *names]:
        rs = [r for r in rows if base(r) == name]
        if not rs:
            continue
        out.append({"name": name, "rounds": len(rs),
                    "disturbed": sum(r["name"] != name for r in rs),
                    "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                    "p50_min_ms": min(r["p50_ms"] for r in rs),
                    "p50_max_ms": max(r["p50_ms"] for r in rs),
                    "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                    "server_cpu_ms_per_req": statistics.median(
                        r["server_cpu_ms_per_req"] for r in rs)})
    floor = out[0]["p50_ms"]
    for s in out:
        s["p50_minus_floor_ms"] = s["p50_ms"] - floor
    return out


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    return {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "python": platform.python_version()}


# ---- main ----------------------------------------------------------------------------------


def setup(repo: Path) -> tuple[Any, str, Any, Any]:
    """perf_analyzer, the model name, the bench target (tensors of the repository's full
    subset, written as perf_analyzer's input) and the floor engine; exits on a missing
    repository or perf_analyzer."""
    from rigserve.export.manifest import load_manifest

    from rigserve.bench import _perf_analyzer
    from rigserve.bench.serve import build_target, floor_engine

    if not (repo / "manifest.json").exists():
        sys.exit(f"{repo} is no model repository (`make demo` writes .demo/repo)")
    pa = _perf_analyzer.locate()
    if isinstance(pa, str):
        sys.exit(pa)
    OUT.mkdir(parents=True, exist_ok=True)
    target = build_target(repo, None, 0, None)
    model = f"{load_manifest(repo).model}.{target.subset}"
    _perf_analyzer.input_data(target.tensors, OUT / "data.json")
    return pa, model, target, floor_engine(repo, target.subset, 1)


def interleaved_rounds(servers: list[Server], *, pa: Any, model: str,
                       tensors: dict[str, np.ndarray], engine: Any, rounds: int,
                       requests: int) -> list[dict[str, Any]]:
    """Each round: the ORT floor, then every server (order reversed every other round),
    each run repeated while disturbed; the rows, printed as they come."""
    rows: list[dict[str, Any]] = []
    for rnd in range(1, rounds + 1):
        order = servers if rnd % 2 else servers[::-1]
        jobs = [functools.partial(measure_floor, engine, tensors, requests),
                *(functools.partial(measure_server, s, pa, model, requests) for s in order)]
        for job in jobs:
            r = undisturbed(job)
            r["round"] = rnd
            rows.append(r)
            print(row_line(r), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/native_grpc_probe/probe.py",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, default=ROOT / ".demo" / "repo",
                   help="model repository (default .demo/repo, from `make demo`)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--requests", type=int, default=2000,
                   help="requests per perf_analyzer window and floor runs (default 2000)")
    p.add_argument("--busy-us", type=int, default=500,
                   help="the busy-wait server's stand-in engine time, us (default 500)")
    a = p.parse_args(argv)

    from rigserve.bench._bare_grpc import bare_server
    from rigserve.serve_process import serve_process

    if not NATIVE.exists():
        sys.exit(f"{NATIVE} is missing: run tools/native_grpc_probe/build.sh first")
    pa, model, target, engine = setup(a.repo)
    busy = f"native_sync_busy{a.busy_us}"
    print(f"model {model}; inputs "
          f"{ {n: list(t.shape) for n, t in target.tensors.items()} }", flush=True)

    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(native_server("native_sync", model, "sync")),
                   stack.enter_context(native_server("native_cb", model, "callback")),
                   stack.enter_context(native_server(busy, model, "sync", a.busy_us))]
        proc, port = stack.enter_context(bare_server(a.repo, None, 1))  # waits for "ready"
        servers.append(Server("bare", port, proc.pid))
        rig = stack.enter_context(serve_process(a.repo, log=OUT / "rigserve.log"))
        wait_ready(rig.proc, rig.grpc_port, "rigserve")
        servers.append(Server("rigserve", rig.grpc_port, rig.proc.pid))
        for s in servers:
            check_metadata(s, model, target.tensors)
        print("servers: " + ", ".join(f"{s.name} :{s.port} pid {s.pid}" for s in servers))

        print(f"{'round':>5} {'name':<34} {'p50':>6} {'p90':>6} {'p95':>6} {'p99':>6} "
              f"{'req/s':>7} {'srvCPUms':>8} {'cliCPUms':>8} {'other_s':>7} {'n':>6}",
              flush=True)
        rows = interleaved_rounds(servers, pa=pa, model=model, tensors=target.tensors,
                                  engine=engine, rounds=a.rounds, requests=a.requests)

    summary = summarize(rows, [s.name for s in servers])
    floor = summary[0]["p50_ms"]
    print(f"\nmedian over rounds (floor p50 {floor:.3f} ms; issue-6 target p50 <= "
          f"{floor + 0.5:.3f} ms)")
    print(f"{'name':<34} {'p50':>6} {'p50 range':>13} {'p99':>6} {'srvCPUms':>8} "
          f"{'-floor':>7} {'disturbed':>9}")
    for s in summary:
        print(f"{s['name']:<34} {s['p50_ms']:6.3f} {s['p50_min_ms']:6.3f}-{s['p50_max_ms']:6.3f} "
              f"{s['p99_ms']:6.3f} {s['server_cpu_ms_per_req']:8.3f} "
              f"{s['p50_minus_floor_ms']:+7.3f} {s['disturbed']:>9}")
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "repo": str(a.repo), "model": model,
              "rounds": a.rounds, "requests": a.requests, "busy_us": a.busy_us,
              "summary": summary, "rows": rows}
    (OUT / "results.json").write_text(json.dumps(result, indent=1))
    print(f"\nwrote {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
