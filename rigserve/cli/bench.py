"""`rigserve bench WHAT`: benchmarks that measure on this machine and report honestly.

Each benchmark is a module in `rigserve.bench` exposing ``add_arguments(parser)`` and
``run(args) -> int``; its first docstring line is its help text.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from typing import Any


def register(sub: Any) -> None:
    import rigserve.bench as bench_pkg

    parser = sub.add_parser(
        "bench",
        help="benchmarks (accuracy, serve, simulate, export, ...) written to BENCHMARKS.md",
        description="Run a benchmark on this machine. Results print as a table; "
        "--write appends them to BENCHMARKS.md with the machine and the command.",
    )
    which = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for info in pkgutil.iter_modules(bench_pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"rigserve.bench.{info.name}")
        doc = (module.__doc__ or info.name).strip().splitlines()[0]
        p = which.add_parser(info.name, help=doc, description=module.__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(handler=module.run)
