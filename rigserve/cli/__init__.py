"""The `rigserve` command line: thin entry points that parse and call library code.

Each subcommand is a module in this package exposing ``register(subparsers)``; the
module's handler imports its heavy dependencies lazily so `rigserve --help` is instant
and the serving commands never import torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

# Order in `rigserve --help`; modules present in the package but not listed come last.
_ORDER = ("demo", "simulate", "train", "export", "serve", "edge", "bench")

_EPILOG = """\
the pipeline, end to end:
  rigserve simulate --out data/rig --frames 60        # MM-Fi layout from a simulated rig
  rigserve train --data data/rig --out runs/pta       # Purify-then-Align students
  rigserve export runs/pta --out repos/rig            # one verified engine per sensor subset
  rigserve serve repos/rig                            # REST :8000, gRPC :8001, /metrics
  rigserve edge --target localhost:8001 --rig r1 --simulate --fail "lidar@5s-15s"

or all of it at once:  rigserve demo
"""


def _command_modules() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return [m for m in _ORDER if m in found] + sorted(found - set(_ORDER))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rigserve",
        description="Train, export and serve human-sensing models for sensor rigs "
        "(depth, LiDAR, WiFi CSI, mmWave) that keep working when sensors drop out.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
