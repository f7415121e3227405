"""`rigserve serve [REPO]`: REST (FastAPI/uvicorn) and gRPC over one model repository."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path
from types import FrameType
from typing import Any

# CLI flag -> Settings field; flags left unset fall back to RIGSERVE_* variables, then defaults.
_FLAGS: dict[str, tuple[type, str]] = {
    "host": (str, "bind address"),
    "http_port": (int, "REST port (default 8000)"),
    "grpc_port": (int, "gRPC port (default 8001)"),
    "intra_op_threads": (int, "ONNX Runtime intra-op threads per engine"),
    "max_batch_size": (int, "dynamic batching: most rows per engine run"),
    "max_queue_delay_ms": (float, "dynamic batching: longest wait for a fuller batch"),
    "max_queue_size": (int, "queued requests per engine before answering 429"),
    "engine_instances": (int, "concurrent batches per engine"),
    "inline_max_ms": (float, "run a lone request at once if its engine is faster (ms; 0 = off)"),
    "staleness_s": (float, "stream: seconds of silence before a sensor is offline"),
    "max_body_bytes": (int, "request body limit (413 above it)"),
    "tls_cert": (Path, "TLS certificate (gRPC)"),
    "tls_key": (Path, "TLS private key (gRPC)"),
    "precision": (str, "engine precision preference, e.g. fp16,fp32,int8"),
}


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a model repository over REST and gRPC",
                       description="Serve REPO (from `rigserve export`): the rig endpoint and "
                       "KServe v2 over REST, Triton's gRPC API, Prometheus /metrics. Every "
                       "option can also be set as RIGSERVE_<OPTION> in the environment, "
                       "REPO as RIGSERVE_REPOSITORY.")
    p.add_argument("repository", type=Path, metavar="REPO", nargs="?", default=None,
                   help="model repository (default: $RIGSERVE_REPOSITORY)")
    for name, (kind, text) in _FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text)
    p.add_argument("--no-grpc", action="store_true", help="serve REST only")
    p.add_argument("--api-key", action="append", dest="api_keys", default=None,
                   help="require this API key (repeat for several)")
    p.add_argument("--log-level", default="info", help="uvicorn access/error log level")
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from rigserve.server.rest.app import begin_shutdown, create_app
    from rigserve.server.settings import Settings

    overrides: dict[str, Any] = {k: getattr(args, k) for k in (*_FLAGS, "repository")
                                 if getattr(args, k) is not None}
    if args.no_grpc:
        overrides["grpc_port"] = None
    if args.api_keys:
        overrides["api_keys"] = args.api_keys
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        if any(e["type"] == "missing" and e["loc"] == ("repository",) for e in exc.errors()):
            print("rigserve serve: no model repository; give REPO (`rigserve serve REPO`) or "
                  "set RIGSERVE_REPOSITORY", file=sys.stderr)
        else:
            print(f"rigserve serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    app = create_app(settings, install_signal_handlers=True)
    # uvicorn takes whole seconds and None for "wait for ever": round a fraction up, so a
    # drain under a second is still bounded and 0 means no wait, as it does for gRPC.
    config = uvicorn.Config(app, host=settings.host, port=settings.http_port,
                            log_level=args.log_level,
                            timeout_graceful_shutdown=math.ceil(settings.drain_timeout_s))

    class Server(uvicorn.Server):
        """uvicorn's server, telling the app the moment a stop signal arrives."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            begin_shutdown(app)
            super().handle_exit(sig, frame)

    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: a second Ctrl-C
        server.run()
    # As uvicorn.run: a server that never started (no repository, port taken) exits 3.
    return 0 if server.started else 3
