"""`rigserve demo`: the whole pipeline on a small simulated rig, then keep serving."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rigserve.cli._args import count


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 60x80, got {text!r}") from None
    return h, w


def register(sub: Any) -> None:
    from rigserve.demo import DemoOptions, default_workdir

    d = DemoOptions()
    p = sub.add_parser(
        "demo", help="simulate a rig, train, export, serve, and drive it with sensors failing",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Runs rigserve end to end on a small simulated rig:
  1. simulate a depth + LiDAR + WiFi rig (and a live rig of unseen subjects)
  2. train Purify-then-Align students and print the per-subset table
  3. export one parity-checked engine per sensor subset (fp32 + int8, Triton layout)
  4. serve them (REST, KServe v2, gRPC, /metrics)
  5. drive the server over REST and the gRPC rig stream while sensors fail,
     then print the subset mix, latency percentiles and accuracy per subset
Then it keeps serving with the URLs printed until Ctrl-C (--once exits instead).
Finished steps are reused from the work folder; --fresh redoes them.""")
    p.add_argument("--workdir", type=Path, default=default_workdir(),
                   help="where data, run, repository and logs go (default %(default)s, "
                   "or $RIGSERVE_DEMO_DIR)")
    p.add_argument("--once", action="store_true", help="exit after the summary")
    p.add_argument("--fresh", action="store_true", help="redo every step")
    p.add_argument("--frames", type=count(1), default=d.frames,
                   help="frames per training sequence (default %(default)s)")
    p.add_argument("--epochs", type=count(1), default=d.epochs,
                   help="training epochs (default %(default)s)")
    p.add_argument("--depth-size", type=_size, default=d.depth_size, metavar="HxW",
                   help=f"simulated depth image size (default {d.depth_size[0]}x{d.depth_size[1]})")
    p.add_argument("--http-port", type=count(0), default=d.http_port,
                   help="REST port (default %(default)s); a free one is used if taken")
    p.add_argument("--grpc-port", type=count(0), default=d.grpc_port,
                   help="gRPC port (default %(default)s); a free one is used if taken")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="seed of the simulated rigs, training and the sensor failures (default "
                   "%(default)s)")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    import signal
    import sys

    from rigserve.demo import DemoOptions, run_demo

    # SIGTERM (kill, docker stop) unwinds like Ctrl-C, so the server the demo started is
    # stopped with it instead of being orphaned on the demo's ports.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    opts = DemoOptions(workdir=args.workdir, frames=args.frames, epochs=args.epochs,
                       depth_size=args.depth_size, http_port=args.http_port,
                       grpc_port=args.grpc_port, seed=args.seed, fresh=args.fresh)
    return run_demo(opts, lambda line: print(line, flush=True), once=args.once)
