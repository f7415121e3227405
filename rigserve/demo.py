"""The whole pipeline on a small simulated rig: simulate → train → export → serve → drive.

`run_demo` is the library half of `rigserve demo`: it does the work and reports progress
through a callback; the CLI decides where the lines go. Every step writes under one work
folder and is skipped when its output is already there and complete, so a second
`make demo` goes straight to serving.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rigserve.sensors.specs import ACTION_CODES, ACTION_NAMES
from rigserve.serve_process import serve_process

logger = logging.getLogger(__name__)
Report = Callable[[str], None]

MODALITIES = ("depth", "lidar", "wifi")
#: Training rig: six subjects per environment, every action. More subjects with fewer
#: frames each generalise better than the reverse at the same cost (students otherwise
#: learn who is in the room rather than how they move).
TRAIN_SUBJECTS = tuple(f"S{e * 10 + i:02d}" for e in range(4) for i in range(1, 7))
#: The live rig the demo drives: subjects the model never saw, one per environment.
LIVE_SUBJECTS = ("S09", "S19", "S29", "S39")
LIVE_ACTIONS = ("A02", "A06", "A12", "A13", "A17", "A19", "A22", "A26", "A27")

#: The REST drive's failure script: (fraction of the run where it starts, what happens).
REST_SCRIPT: tuple[tuple[float, str], ...] = (
    (0.0, "all sensors online"),
    (0.2, "lidar unplugged"),
    (0.4, "depth camera blocked (all-zero frames)"),
    (0.6, "wifi link flaky (30% of frames lost)"),
    (0.8, "only wifi left"),
)
STREAM_FAILURES = "lidar@1s-3s,wifi:p=0.2"


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path = Path(".demo")
    frames: int = 12
    live_frames: int = 12
    epochs: int = 8
    depth_size: tuple[int, int] = (60, 80)
    http_port: int = 8000
    grpc_port: int = 8001
    seed: int = 0
    fresh: bool = False
    stream_fps: float = 25.0


@dataclass
class DriveStats:
    """What one protocol's drive saw, per request."""

    subsets: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    errors_mm: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    action_hits: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    dropped: Counter[str] = field(default_factory=Counter)
    failures: int = 0

    def add(self, subset: str, latency_s: float, *, mpjpe_mm: float | None = None,
            action: str | None = None, true_action: str | None = None) -> None:
        self.subsets[subset] += 1
        self.latencies_s.append(latency_s)
        if mpjpe_mm is not None:
            self.errors_mm[subset].append(mpjpe_mm)
        if action is not None and true_action is not None:
            self.action_hits[subset].append(action == true_action)


def _mpjpe_mm(joints: np.ndarray, truth: np.ndarray | None) -> float | None:
    if truth is None:
        return None
    return float(np.linalg.norm(joints - truth, axis=-1).mean() * 1e3)  # (17,) -> mean


def _true_action(key: str) -> str:
    """The action name of an MM-Fi frame key ``E01/S09/A02#3``."""
    code = key.partition("#")[0].rpartition("/")[2]
    return ACTION_NAMES[ACTION_CODES.index(code)]


# ---- steps ------------------------------------------------------------------------------

def _simulate(out: Path, subjects: tuple[str, ...], actions: tuple[str, ...] | None, *,
              frames: int, seed: int, opts: DemoOptions, report: Report) -> None:
    from rigserve.sensors.simulator import simulate

    done = out / ".complete"
    if done.exists() and not opts.fresh:
        report(f"  reusing {out}")
        return
    summary = simulate(out, subjects=subjects, actions=actions, frames=frames,
                       depth_size=opts.depth_size, modalities=(*MODALITIES, "mmwave"), seed=seed)
    done.write_text(json.dumps({"frames": summary.frames}))
    report(f"  {summary.frames} frames in {len(summary.sequences)} sequences, "
           f"{summary.frames / max(summary.seconds, 1e-9):.0f} frames/s -> {out}")


def _train(data: Path, run: Path, opts: DemoOptions, report: Report) -> None:
    from rigserve.training import TrainConfig, train

    if (run / "metrics.json").exists() and not opts.fresh:
        report(f"  reusing {run}")
        return
    cfg = TrainConfig.from_sources(overrides={
        "data": str(data), "out": str(run), "modalities": list(MODALITIES),
        "seed": opts.seed, "optim.epochs": opts.epochs,
    })
    start = time.perf_counter()
    train(cfg)
    report(f"  trained in {time.perf_counter() - start:.0f} s -> {run}")


def _subset_table(run: Path) -> str:
    metrics = json.loads((run / "metrics.json").read_text())
    rows = metrics.get("subsets", metrics)
    lines = [f"  {'subset':<18} {'MPJPE mm':>9} {'PA-MPJPE':>9} {'top-1':>6}"]
    for name, m in rows.items():
        if not isinstance(m, dict) or "mpjpe_mm" not in m:
            continue
        lines.append(f"  {name:<18} {m['mpjpe_mm']:>9.1f} {m['pa_mpjpe_mm']:>9.1f} "
                     f"{m['action_top1']:>6.2f}")
    return "\n".join(lines)


def _export(run: Path, repo: Path, opts: DemoOptions, report: Report) -> None:
    from rigserve.export import ExportOptions, export_run

    if (repo / "manifest.json").exists() and not opts.fresh:
        report(f"  reusing {repo}")
        return
    start = time.perf_counter()
    manifest = export_run(run, repo, ExportOptions(precisions=("fp32", "int8"), triton=True))
    report(f"  {len(manifest.engines)} engines (fp32 + int8 per subset, Triton layout) "
           f"in {time.perf_counter() - start:.0f} s -> {repo}")


def _live_frames(live: Path) -> list[tuple[dict[str, bytes], np.ndarray | None, str]]:
    """(MM-Fi file bytes per sensor, ground truth, action name) for every live frame."""
    from rigserve.edge import mmfi_frames

    out = [(frame.sensors, frame.ground_truth, _true_action(frame.key))
           for frame in mmfi_frames(live, modalities=MODALITIES)]
    # Interleave sequences so every failure phase sees several subjects and actions.
    rng = np.random.default_rng(7)
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def _scripted(sensors: dict[str, bytes], phase: int, rng: np.random.Generator) -> dict[str, bytes]:
    from rigserve.sensors.formats import encode_frame

    sensors = dict(sensors)
    if phase == 1:
        sensors.pop("lidar", None)
    elif phase == 2 and "depth" in sensors:
        sensors["depth"] = encode_frame("depth", np.zeros((480, 640), np.uint16))
    elif phase == 3 and rng.random() < 0.3:
        sensors.pop("wifi", None)
    elif phase == 4:
        sensors = {k: v for k, v in sensors.items() if k == "wifi"}
    return sensors


def drive_rest(url: str, frames: list[tuple[dict[str, bytes], np.ndarray | None, str]],
               report: Report) -> DriveStats:
    import httpx

    stats = DriveStats()
    rng = np.random.default_rng(0)
    bounds = [int(start * len(frames)) for start, _ in REST_SCRIPT]
    with httpx.Client(base_url=url, timeout=30) as client:
        for i, (sensors, truth, action) in enumerate(frames):
            phase = max(k for k, b in enumerate(bounds) if i >= b)
            if i == bounds[phase]:
                report(f"  [rest] frame {i:>3}: {REST_SCRIPT[phase][1]}")
            sent = _scripted(sensors, phase, rng)
            files = {m: (f"frame{i:03d}", data) for m, data in sent.items()}
            t0 = time.perf_counter()
            r = client.post("/v1/rigs/demo-rig/infer", files=files)
            latency = time.perf_counter() - t0
            if r.status_code != 200:
                stats.failures += 1
                report(f"  [rest] frame {i}: HTTP {r.status_code} {r.text[:120]}")
                continue
            body = r.json()
            stats.add(body["subset"], latency, action=body["action"], true_action=action,
                      mpjpe_mm=_mpjpe_mm(np.asarray(body["joints"]), truth))
            for modality, reason in body["dropped"].items():
                stats.dropped[f"{modality}:{reason}"] += 1
    return stats


def drive_stream(target: str, live: Path, opts: DemoOptions, report: Report) -> DriveStats:
    from rigserve.edge import (
        FailureScript,
        mmfi_frames,
        open_channel,
        parse_failures,
        stream_frames,
    )

    stats = DriveStats()
    script = FailureScript(parse_failures(STREAM_FAILURES), seed=opts.seed)
    source = list(mmfi_frames(live, modalities=MODALITIES, limit=int(opts.stream_fps * 5)))
    report(f"  [grpc] streaming {len(source)} frames at {opts.stream_fps:g} fps "
           f"with failures {STREAM_FAILURES!r}")

    def on_answer(a: Any) -> None:
        for modality, state, reason in a.events:
            report(f"  [grpc] frame {a.sequence:>3}: {modality} -> {state.lower()} ({reason})")
        if a.error is None:
            stats.add(a.subset, a.latency_s, mpjpe_mm=a.mpjpe_mm, action=a.action,
                      true_action=_true_action(source[a.sequence].key))

    with contextlib.closing(open_channel(target)) as channel:
        summary = stream_frames(channel, "demo-edge", source, fps=opts.stream_fps,
                                failures=script, on_answer=on_answer)
    stats.failures = summary.errors
    return stats


def _summary(name: str, stats: DriveStats) -> str:
    n = sum(stats.subsets.values())
    lat = np.asarray(stats.latencies_s) * 1e3
    p50, p95, p99 = (np.percentile(lat, q) if lat.size else float("nan") for q in (50, 95, 99))
    lines = [f"{name}: {n} answered, {stats.failures} failed; latency p50 {p50:.1f} ms, "
             f"p95 {p95:.1f} ms, p99 {p99:.1f} ms (client-measured, incl. upload)"]
    lines.append(f"  {'subset used':<18} {'share':>6} {'MPJPE mm':>9} {'action top-1':>13}")
    for subset, count in stats.subsets.most_common():
        errs, hits = stats.errors_mm.get(subset, []), stats.action_hits.get(subset, [])
        mpjpe = f"{np.mean(errs):9.1f}" if errs else f"{'-':>9}"
        top1 = f"{np.mean(hits):13.2f}" if hits else f"{'-':>13}"
        lines.append(f"  {subset:<18} {count / max(n, 1):>6.0%} {mpjpe} {top1}")
    if stats.dropped:
        why = ", ".join(f"{k} x{v}" for k, v in stats.dropped.most_common())
        lines.append(f"  dropped by the router: {why}")
    return "\n".join(lines)


# ---- the whole thing --------------------------------------------------------------------

def run_demo(opts: DemoOptions, report: Report, *, once: bool = False) -> int:
    work = opts.workdir
    work.mkdir(parents=True, exist_ok=True)
    data, live, run, repo = work / "data", work / "live", work / "run", work / "repo"
    t_start = time.perf_counter()

    report(f"1/5 simulating the training rig ({len(TRAIN_SUBJECTS)} subjects x 27 actions x "
           f"{opts.frames} frames, depth {opts.depth_size[0]}x{opts.depth_size[1]})")
    _simulate(data, TRAIN_SUBJECTS, None, frames=opts.frames, seed=opts.seed, opts=opts,
              report=report)
    report(f"    and the live rig: unseen subjects {', '.join(LIVE_SUBJECTS)}")
    _simulate(live, LIVE_SUBJECTS, LIVE_ACTIONS, frames=opts.live_frames, seed=opts.seed + 1,
              opts=opts, report=report)

    report(f"2/5 training Purify-then-Align students over {'+'.join(MODALITIES)} "
           f"({opts.epochs} epochs)")
    _train(data, run, opts, report)
    report("  validation, every sensor subset:\n" + _subset_table(run))

    report("3/5 exporting one verified engine per sensor subset")
    _export(run, repo, opts, report)

    frames = _live_frames(live)
    with serve_process(repo, http_port=opts.http_port, grpc_port=opts.grpc_port,
                       log=work / "server.log", timeout_s=90) as server:
        url, target = server.url, f"127.0.0.1:{server.grpc_port}"
        report(f"4/5 serving {repo} (REST {url}, gRPC {target})")
        report("5/5 driving the server with sensors failing")
        rest = drive_rest(url, frames, report)
        stream = drive_stream(target, live, opts, report)
        report("")
        report(_summary("REST rig endpoint (multipart MM-Fi files)", rest))
        report(_summary("gRPC rig stream (edge client)", stream))
        elapsed = time.perf_counter() - t_start
        report(f"\nend to end in {elapsed:.0f} s; server log {work / 'server.log'}")
        if once:
            return 0 if rest.failures == 0 and stream.failures == 0 else 1
        _announce(url, target, repo, live, report)
        with contextlib.suppress(KeyboardInterrupt):
            while server.proc.poll() is None:
                time.sleep(0.5)
    return 0


def _announce(url: str, target: str, repo: Path, live: Path, report: Report) -> None:
    seq = live / "E01" / LIVE_SUBJECTS[0] / LIVE_ACTIONS[0]
    report(f"""
rigserve is serving {repo} until Ctrl-C:
  rig endpoint   curl -F depth=@{seq}/depth/frame001.png -F lidar=@{seq}/lidar/frame001.bin \\
                      -F wifi=@{seq}/wifi-csi/frame001.mat {url}/v1/rigs/my-rig/infer
  KServe v2      {url}/v2/models/rig   (tritonclient.http works against {url.split('//')[1]})
  gRPC           {target}   (tritonclient.grpc works unmodified)
  edge client    rigserve edge --target {target} --rig r1 --simulate --fail "lidar@5s-15s"
  metrics        {url}/metrics
""")


def default_workdir() -> Path:
    return Path(os.environ.get("RIGSERVE_DEMO_DIR", ".demo"))
