"""`rigserve edge`: replay an MM-Fi folder or a simulated rig over the rig stream."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rigserve.cli._args import count

_EPILOG = """\
failure script (--fail): comma-separated rules MODALITY[@START-[END]][:p=P]
  lidar@5s-15s        LiDAR sends nothing from 5 s to 15 s (times: 5s, 2.5, 1500ms)
  lidar@5s-           ... from 5 s to the end of the run
  wifi:p=0.2          WiFi frames lost at random, 20 % of them, for the whole run
  depth@2s-4s:p=0.5   half the depth frames lost between 2 s and 4 s
  MODALITY is one of depth, lidar, mmwave, wifi; times are on the capture clock
  (frame index / --fps; seconds since the start at --fps 0).

examples:
  rigserve edge --target localhost:8001 --rig r1 --simulate --fail "lidar@5s-15s"
  rigserve edge --target localhost:8001 --rig r1 --simulate --frames 80 --fps 20 --quiet
  rigserve edge --target localhost:8001 --rig r1 --data data/rig --fps 0 --fail "wifi:p=0.3"
"""


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frames per second, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected frames per second >= 0 (0 = flat out), "
                                         f"got {text}")
    return value


def _target(text: str) -> str:
    if text.startswith("unix:"):  # a gRPC Unix-socket target names no port
        return text
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port in 1..65535, "
                                         f"e.g. localhost:8001, got {text!r}")
    return text


def register(sub: Any) -> None:
    p = sub.add_parser(
        "edge", help="stream an MM-Fi folder or a simulated rig to a server, with failures",
        description="Stream frames to `rigserve serve` over the gRPC rig stream, as an edge "
        "rig would, with scripted sensor failures; shows the subset used, latency and the "
        "error against ground truth per frame, and a summary at the end.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", required=True, type=_target, metavar="HOST:PORT",
                   help="server gRPC address, e.g. localhost:8001")
    p.add_argument("--rig", required=True, metavar="ID", help="rig id sent with every frame")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, metavar="DIR", help="MM-Fi-layout folder to replay")
    source.add_argument("--simulate", action="store_true", help="live synthetic rig frames")
    p.add_argument("--fps", type=_fps, default=10.0,
                   help="frames per second (default %(default)g; 0 = flat out)")
    p.add_argument("--fail", default="", metavar="SCRIPT",
                   help="sensor failures, e.g. 'lidar@5s-15s,wifi:p=0.2' (grammar below; "
                   "default: none)")
    p.add_argument("--frames", type=count(1), default=None, metavar="N",
                   help="stop after N frames (default: --simulate 100, --data every frame)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="simulator and random-failure seed (default %(default)s)")
    p.add_argument("--action", default="A01", metavar="CODE",
                   help="simulated action code, A01..A27 (default %(default)s)")
    p.add_argument("--api-key", default=os.environ.get("RIGSERVE_API_KEY"), metavar="KEY",
                   help="API key (default: $RIGSERVE_API_KEY)")
    p.add_argument("--tls-ca", type=Path, default=None, metavar="PEM",
                   help="CA certificate: use TLS (default: plaintext)")
    p.add_argument("--reconnects", type=count(0), default=5, metavar="N",
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
    try:
        if args.data is not None:
            source = edge.mmfi_frames(args.data, limit=args.frames)
        else:
            source = edge.simulated_frames(args.frames or 100, seed=args.seed,
                                           action=args.action)
    except (OSError, ValueError) as exc:
        option = "--data" if args.data is not None else "--action"
        print(f"rigserve edge: {option}: {exc}", file=sys.stderr)
        return 2
    if args.tls_ca is not None and not args.tls_ca.is_file():
        print(f"rigserve edge: --tls-ca: {args.tls_ca} is not a file", file=sys.stderr)
        return 2
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
