"""Generate the Python gRPC stubs for the .proto files in this folder.

Run ``python -m rigserve.proto.build`` (or ``make proto``) after editing a .proto.
The generated modules are committed; tests/grpc/test_proto.py regenerates into a
temporary folder and fails when they differ.

protoc writes ``import model_config_pb2`` (imports relative to the proto root);
here they are rewritten to ``from rigserve.proto import model_config_pb2`` so the
stubs import inside the installed package. The .proto files sit at the root of
the include path on purpose: Triton's files must keep their published names
(``model_config.proto``, ``grpc_service.proto``) for the descriptor pool to
accept tritonclient's compiled copies next to ours.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

PROTO_DIR = Path(__file__).resolve().parent
PACKAGE = "rigserve.proto"

#: The .proto files, in dependency order.
PROTO_FILES: tuple[str, ...] = ("model_config.proto", "grpc_service.proto", "rig_stream.proto")

_BARE_IMPORT = re.compile(r"^import (\w+_pb2) as (\w+)$", re.M)


class ProtocError(RuntimeError):
    """protoc rejected a .proto file."""


#: grpcio-tools writes code that strict mypy rejects (unannotated service modules, bare
#: ``Mapping`` in the stubs); mypy checks the server, which imports them, so generated
#: files say not to check them. Their types are still used by the code importing them.
_MYPY_HEADER = "# mypy: ignore-errors\n"


def _fix_imports(text: str) -> str:
    return _BARE_IMPORT.sub(rf"from {PACKAGE} import \1 as \2", text)


def _postprocess(text: str) -> str:
    text = _fix_imports(text)
    if not text.startswith(_MYPY_HEADER):
        text = _MYPY_HEADER + text
    return text


def generated_files(proto_files: Sequence[str] = PROTO_FILES) -> list[str]:
    """Names of the modules protoc writes for ``proto_files``."""
    names: list[str] = []
    for proto in proto_files:
        stem = proto.removesuffix(".proto")
        names += [f"{stem}_pb2.py", f"{stem}_pb2.pyi", f"{stem}_pb2_grpc.py"]
    return names


def generate(out_dir: Path = PROTO_DIR, proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Compile every .proto in ``proto_dir`` into ``out_dir``; returns the written files."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"--proto_path={proto_dir}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(proto_dir / p) for p in PROTO_FILES),
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise ProtocError(f"protoc exited with {rc} for {', '.join(PROTO_FILES)} in {proto_dir}")
    written = []
    for name in generated_files():
        path = out_dir / name
        path.write_text(_postprocess(path.read_text()))
        written.append(path)
    logger.info("generated %d files in %s", len(written), out_dir)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROTO_DIR, help="output folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
