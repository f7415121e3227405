"""`rigserve serve [REPO]`: REST (FastAPI/uvicorn) and gRPC over one model repository."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path
from types import FrameType
from typing import Any

# CLI flag -> Settings field; flags left unset fall back to RIGSERVE_* variables, then the
# Settings defaults (shown in the help from the Settings class itself, so they cannot drift).
_FLAGS: dict[str, tuple[type, str]] = {
    "host": (str, "bind address"),
    "http_port": (int, "REST port, 0 = a free one"),
    "grpc_port": (int, "gRPC port, 0 = a free one"),
    "intra_op_threads": (int, "ONNX Runtime intra-op threads per engine, 0 = auto"),
    "max_batch_size": (int, "dynamic batching: most rows per engine run"),
    "max_queue_delay_ms": (float, "dynamic batching: longest wait for a fuller batch, ms"),
    "max_queue_size": (int, "queued requests per engine before answering 429"),
    "engine_instances": (int, "concurrent batches per engine, 1..16"),
    "inline_max_ms": (float, "run a lone request at once if its engine is faster, ms; 0 = off"),
    "staleness_s": (float, "stream: seconds of silence before a sensor is offline"),
    "max_body_bytes": (int, "request body limit in bytes (413 above it)"),
    "tls_cert": (Path, "TLS certificate for gRPC (with --tls-key)"),
    "tls_key": (Path, "TLS private key for gRPC (with --tls-cert)"),
    "precision": (str, "engine precision preference, first the repository has wins"),
}

_EPILOG = """\
examples:
  rigserve serve repos/rig                          # REST + /metrics on :8000, gRPC on :8001
  rigserve serve repos/rig --http-port 9000 --no-grpc --api-key secret
  RIGSERVE_REPOSITORY=repos/rig RIGSERVE_MAX_BATCH_SIZE=16 rigserve serve

kill -HUP reloads a re-exported repository without failing a request.
"""


def _default(name: str) -> str:
    from rigserve.server.settings import Settings

    field = Settings.model_fields[name]
    value = field.get_default(call_default_factory=True)
    if isinstance(value, list):
        value = ",".join(map(str, value))
    return "none" if value is None else str(value)


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a model repository over REST and gRPC",
                       description="Serve REPO (from `rigserve export`): the rig endpoint and "
                       "KServe v2 over REST, Triton's gRPC API, Prometheus /metrics. Each "
                       "option below that names a RIGSERVE_* variable can be set by it instead; "
                       "the flag wins.", epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("repository", type=Path, metavar="REPO", nargs="?", default=None,
                   help="model repository holding manifest.json (default: $RIGSERVE_REPOSITORY)")
    for name, (kind, text) in _FLAGS.items():
        metavar = {int: "N", float: "X", Path: "FILE"}.get(kind, name.split("_")[-1].upper())
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None, metavar=metavar,
                       help=f"{text} (default {_default(name)}; RIGSERVE_{name.upper()})")
    p.add_argument("--no-grpc", action="store_true", help="serve REST only")
    p.add_argument("--api-key", action="append", dest="api_keys", default=None, metavar="KEY",
                   help="require this API key (repeat for several; default none; "
                   "RIGSERVE_API_KEYS=k1,k2)")
    p.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug", "trace"),
                   help="uvicorn access/error log level (default %(default)s)")
    p.set_defaults(handler=_serve)


def _settings_error(exc: Any) -> str:
    """A pydantic ValidationError as one line per bad value, named as the user gave it."""
    lines = []
    for e in exc.errors():
        msg = str(e["msg"]).removeprefix("Value error, ")
        if not e["loc"]:  # a check across fields: its message names them
            lines.append(msg)
            continue
        name = str(e["loc"][0])
        flag = "REPO" if name == "repository" else "--" + name.replace("_", "-")
        got = "" if e["type"] == "value_error" else f" (got {e.get('input')!r})"
        lines.append(f"{flag} / RIGSERVE_{name.upper()}: {msg}{got}")
    return "; ".join(lines)


def _port_taken(host: str, port: int | None) -> str | None:
    """Why ``port`` cannot be bound on ``host`` now, or None (0 and None need no check)."""
    import socket

    if not port:
        return None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            probe.bind(address)
    except OSError as exc:
        return f"cannot bind {host}:{port}: {exc.strerror or exc}"
    return None


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
            print(f"rigserve serve: {_settings_error(exc)}", file=sys.stderr)
        return 2
    problem = _preflight(settings)
    if problem:
        print(f"rigserve serve: {problem}", file=sys.stderr)
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


def _preflight(settings: Any) -> str | None:
    """What would stop the server in its start-up, as one line, before it starts.

    Found inside uvicorn's lifespan these are a traceback and exit 3. This reads the
    manifest and checks the sha256 of every engine the server would load; the server
    does it again when it starts, then loads the engines.
    """
    from rigserve.server.errors import RepositoryError
    from rigserve.server.repository import verify_repository

    try:
        verify_repository(settings.repository, settings.precision)
    except RepositoryError as exc:
        return str(exc)
    for flag, port in (("--http-port", settings.http_port), ("--grpc-port", settings.grpc_port)):
        taken = _port_taken(settings.host, port)
        if taken:
            return f"{flag} {port}: {taken}; choose another port, or 0 for a free one"
    return None
