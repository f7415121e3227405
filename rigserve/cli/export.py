"""`rigserve export RUN --out REPO`: one verified engine per sensor subset, plus a manifest."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "export",
        help="export a training run to a model repository (ONNX/TensorRT engines + manifest)",
        description="Export every non-empty modality subset of a training run to its own "
        "engine, check each against the PyTorch model on held-out frames, and write "
        "REPO/manifest.json for `rigserve serve`.",
    )
    parser.add_argument("run", metavar="RUN", help="training run folder (RUN/checkpoint.pt)")
    parser.add_argument("--out", required=True, metavar="REPO", help="model repository to write")
    parser.add_argument("--formats", type=_csv, default=("onnx",), metavar="LIST",
                        help="engine formats, comma-separated: onnx,tensorrt (default onnx; "
                        "tensorrt needs a GPU)")
    parser.add_argument("--precision", type=_csv, default=("fp32",), metavar="LIST",
                        help="precisions besides the fp32 ONNX reference, comma-separated: "
                        "fp32, fp16 (GPU), int8 (CPU edge boxes); default fp32")
    parser.add_argument("--max-batch", type=int, default=32, metavar="N",
                        help="largest batch an engine accepts (default 32)")
    parser.add_argument("--triton", action="store_true",
                        help="also write REPO/triton/<model>/config.pbtxt + 1/model.onnx")
    parser.add_argument("--subsets", type=_csv, default=None, metavar="LIST",
                        help="only these subsets, e.g. depth,depth+lidar (default: all)")
    parser.add_argument("--model-name", default="rig", help="logical model name (default rig)")
    parser.add_argument("--exporter", default="torchscript", choices=("torchscript", "dynamo"),
                        help="torch ONNX exporter (default torchscript: ~10x faster)")
    parser.add_argument("--parity-frames", type=int, default=32, metavar="N",
                        help="held-out frames each engine is checked on (default 32)")
    parser.add_argument("--calibration-frames", type=int, default=32, metavar="N",
                        help="INT8 calibration frames (default 32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from rigserve.export.exporter import ExportError, ExportOptions, export_run
    from rigserve.export.manifest import ManifestError
    from rigserve.training.checkpoint import CheckpointError

    try:
        options = ExportOptions(
            formats=args.formats, precisions=args.precision, max_batch=args.max_batch,
            triton=args.triton, model_name=args.model_name, exporter=args.exporter,
            parity_frames=args.parity_frames, calibration_frames=args.calibration_frames,
            subsets=args.subsets, progress=not args.no_progress)
        manifest = export_run(args.run, args.out, options)
    except (ExportError, ManifestError, CheckpointError, FileNotFoundError) as exc:
        print(f"rigserve export: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: {len(manifest.engines)} engines over {len(manifest.subsets())} subsets")
    print(f"{'engine':<28} {'format':<9} {'prec':<5} {'max|Δjoints| m':>15}  accuracy delta")
    for e in manifest.engines:
        delta = ", ".join(f"{k} {v:+.3g}" for k, v in e.accuracy_delta.items())
        print(f"{e.name:<28} {e.format:<9} {e.precision:<5} "
              f"{e.parity.get('max_abs_err_joints', float('nan')):>15.2e}  {delta}")
    return 0
