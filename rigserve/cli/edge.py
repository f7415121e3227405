"""`rigserve edge`: replay an MM-Fi folder or a simulated rig over the rig stream."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "edge", help="stream an MM-Fi folder or a simulated rig to a server, with failures",
        description="Stream frames to `rigserve serve` over the gRPC rig stream, as an edge "
        "rig would, with scripted sensor failures; shows the subset used, latency and the "
        "error against ground truth per frame, and a summary at the end.")
    p.add_argument("--target", required=True, help="server gRPC address HOST:PORT")
    p.add_argument("--rig", required=True, help="rig id sent with every frame")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="MM-Fi-layout folder to replay")
    source.add_argument("--simulate", action="store_true", help="live synthetic rig frames")
    p.add_argument("--fps", type=float, default=10.0, help="frames per second (0 = flat out)")
    p.add_argument("--fail", default="", metavar="SCRIPT",
                   help="sensor failures, e.g. 'lidar@5s-15s,wifi:p=0.2'")
    p.add_argument("--frames", type=int, default=None,
                   help="stop after N frames (simulate: default 100)")
    p.add_argument("--seed", type=int, default=0, help="simulator and random-failure seed")
    p.add_argument("--action", default="A01", help="simulated action code (A01..A27)")
    p.add_argument("--api-key", default=os.environ.get("RIGSERVE_API_KEY"),
                   help="API key (default: $RIGSERVE_API_KEY)")
    p.add_argument("--tls-ca", type=Path, default=None, help="CA certificate: use TLS")
    p.add_argument("--reconnects", type=int, default=5, metavar="N",
                   help="re-open the stream when the server ends it UNAVAILABLE (shutdown, "
                        "restart), up to N times in a row, backing off 0.5 s to 5 s; "
                        "0 = stop instead (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="summary only, no per-frame view")
    p.set_defaults(handler=_run)


def _line(a: Any) -> str:
    if a.error:
        body = f"ERROR {a.error}"
    else:
        err = f"{a.mpjpe_mm:7.1f} mm" if a.mpjpe_mm is not None else "      -   "
        body = f"{a.subset:<24} {a.latency_s * 1e3:7.1f} ms  {err}  {a.action}"
    extra = "".join(f"  [{m} {s.lower()}: {r}]" for m, s, r in a.events)
    if a.dropped_frames:
        extra += f"  [server dropped {len(a.dropped_frames)}]"
    return f"#{a.sequence:<5d} sent {'+'.join(a.sent) or '-':<24} -> {body}{extra}"


def _summary(s: Any) -> str:
    mpjpe = f"{sum(s.mpjpe_mm) / len(s.mpjpe_mm):.1f} mm" if s.mpjpe_mm else "n/a"
    lines = [
        f"frames sent {s.sent}, answered {s.answered}, errors {s.errors}, "
        f"dropped by the server {s.dropped_by_server}, {s.fps:.1f} frames/s",
        *([f"reconnected {s.reconnects} time(s); {s.unanswered} frame(s) were on the wire "
           f"when a stream ended; {s.skipped_offline} captured while disconnected were not "
           "sent"] if s.reconnects or s.unanswered else []),
        f"latency p50 {s.latency_ms(50):.1f} ms, p95 {s.latency_ms(95):.1f} ms; "
        f"MPJPE vs ground truth {mpjpe}",
        "subsets: " + ", ".join(f"{k} {v}" for k, v in s.subsets.most_common()),
    ]
    lines += [f"  transition at #{seq}: {m} -> {st.lower()} ({r})"
              for seq, m, st, r in s.transitions]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    import grpc

    from rigserve import edge

    try:
        script = edge.FailureScript(edge.parse_failures(args.fail), seed=args.seed)
    except ValueError as exc:
        print(f"rigserve edge: --fail: {exc}", file=sys.stderr)
        return 2
    if args.data is not None:
        source = edge.mmfi_frames(args.data, limit=args.frames)
    else:
        source = edge.simulated_frames(args.frames or 100, seed=args.seed, action=args.action)
    view = None if args.quiet else (lambda a: print(_line(a), flush=True))
    try:
        with edge.open_channel(args.target, args.tls_ca) as channel:
            summary = edge.stream_frames(channel, args.rig, source, fps=args.fps,
                                         failures=script, api_key=args.api_key,
                                         on_answer=view, max_reconnects=args.reconnects)
    except grpc.RpcError as exc:
        print(f"rigserve edge: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"rigserve edge: {exc}", file=sys.stderr)
        return 2
    print(_summary(summary))
    return 0
