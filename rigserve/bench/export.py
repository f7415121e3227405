"""Export time for every subset, and ORT fp32 / int8 / PyTorch latency per subset.

Exports a run (or, without --run, the default-config model over all four modalities at
the default preprocessing, i.e. the demo's model shape with untrained weights: export
cost and latency do not depend on the weight values) to a temporary repository with
fp32 and int8 engines, reports the wall time and the process's peak RSS, then times
each subset's engines at batch 1 and 32 against PyTorch eager. On a machine with a GPU
and TensorRT it also times the TensorRT plan, ORT's TensorRT EP and ORT-CUDA.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rigserve.bench._report import (
    command_line,
    markdown_table,
    peak_rss_mib,
    percentiles_ms,
    write_section,
)

ALL_MODALITIES = ("depth", "lidar", "mmwave", "wifi")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default=None, help="training run to export (default: a "
                        "default-config model over all four modalities)")
    parser.add_argument("--modalities", default=",".join(ALL_MODALITIES),
                        help="modalities of the default model (ignored with --run)")
    parser.add_argument("--batches", default="1,32", help="batch sizes to time (default 1,32)")
    parser.add_argument("--iters", type=int, default=30, help="timed runs per measurement")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads for ORT and PyTorch (default 1)")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny model and inputs: checks the benchmark runs, not a result")
    parser.add_argument("--write", action="store_true", help="write the section to BENCHMARKS.md")


def _default_run(modalities: tuple[str, ...], tiny: bool) -> Any:
    import torch

    from rigserve.sensors.preprocess import PreprocessSpec, model_input_shape
    from rigserve.training.checkpoint import LoadedRun
    from rigserve.training.config import ModelConfig, TrainConfig
    from rigserve.training.model import MultimodalModel

    spec = (PreprocessSpec(depth_size=(24, 32), lidar_points=64, mmwave_points=32) if tiny
            else PreprocessSpec())
    cfg = ModelConfig(dim=16, width=4, centroids=8, neighbours=4) if tiny else ModelConfig()
    shapes = {m: model_input_shape(m, spec) for m in modalities}
    torch.manual_seed(0)
    model = MultimodalModel(modalities, shapes, cfg).eval()
    config = TrainConfig(modalities=modalities, preprocess=spec.to_dict(), model=cfg).to_dict()
    return LoadedRun(model=model, modalities=model.modalities, spec=spec, config=config,
                     metrics={}, weights=model.purified_weights(), strategy="pta",
                     input_shapes=shapes)


def _time(fn: Callable[[], object], iters: int) -> float:
    """Median seconds per call after two warm-up calls."""
    fn()
    fn()
    samples = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return percentiles_ms(samples, (50,))[0]


def _feeds(shapes: Mapping[str, tuple[int, ...]], subset: tuple[str, ...], batch: int
           ) -> dict[str, np.ndarray]:
    from rigserve.export.frames import synthetic_frames

    frames = synthetic_frames(subset, shapes, frames=batch, calibration=1)
    return dict(frames.inputs)


def _latency_rows(run: Any, repo: Path, manifest: Any, *, batches: list[int], iters: int,
                  threads: int) -> list[list[object]]:
    import torch

    from rigserve.export.runtime import OrtRunner

    torch.set_num_threads(threads)
    rows: list[list[object]] = []
    for subset_name in manifest.subsets():
        engines = {e.precision: e for e in manifest.engines_for(subset_name)
                   if e.format == "onnx"}
        subset = engines["fp32"].subset
        module = run.model.subset_model(subset).eval()
        runners = {p: OrtRunner(repo / e.path, intra_op_threads=threads)
                   for p, e in engines.items()}
        for batch in batches:
            feeds = _feeds(run.input_shapes, subset, batch)
            tensors = [torch.from_numpy(feeds[m]) for m in subset]

            def eager(ts: list[Any] = tensors, mod: Any = module) -> object:
                with torch.no_grad():
                    return mod(*ts)

            row: list[object] = [subset_name, batch, _time(eager, iters)]
            for precision in ("fp32", "int8"):
                runner = runners.get(precision)
                row.append(_time(lambda r=runner, f=feeds: r(f), iters) if runner else "-")
            delta = engines["int8"].accuracy_delta if "int8" in engines else {}
            row.append(", ".join(f"{k} {v:+.3g}" for k, v in delta.items()) or "-")
            rows.append(row)
    return rows


def _gpu_rows(repo: Path, manifest: Any, run: Any, batches: list[int], iters: int
              ) -> tuple[list[list[object]], str]:
    """TensorRT plan vs ORT TensorRT EP vs ORT-CUDA vs ORT-CPU, where a GPU is present."""
    from rigserve.export.runtime import OrtRunner
    from rigserve.export.tensorrt import (
        TrtRunner,
        build_plan,
        ort_tensorrt_runner,
        unavailable_reason,
    )

    reason = unavailable_reason()
    if reason:
        return [], f"TensorRT rows skipped: {reason}."
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for subset_name in manifest.subsets():
            entry = manifest.engines_for(subset_name)[0]
            portable = repo / "triton" / f"{manifest.model}.{subset_name}" / "1" / "model.onnx"
            shapes = {m: tuple(run.input_shapes[m]) for m in entry.subset}
            plan = build_plan(portable, Path(tmp) / f"{subset_name}.plan", shapes,
                              max_batch=max(batches), fp16=True)
            runners: dict[str, Any] = {
                "tensorrt": TrtRunner(plan),
                "ort-trt": ort_tensorrt_runner(portable, shapes, max_batch=max(batches),
                                               fp16=True, cache_dir=Path(tmp)),
                "ort-cuda": OrtRunner(portable, providers=("CUDAExecutionProvider",)),
                "ort-cpu": OrtRunner(portable),
            }
            for batch in batches:
                feeds = _feeds(run.input_shapes, entry.subset, batch)
                rows.append([subset_name, batch, *(
                    _time(lambda r=r, f=feeds: r(f), iters) for r in runners.values())])
    return rows, ""


def run(args: argparse.Namespace) -> int:
    from rigserve.export.exporter import ExportOptions, export_loaded, export_run

    batches = [int(b) for b in args.batches.split(",") if b]
    modalities = tuple(sorted(m for m in args.modalities.split(",") if m))
    with tempfile.TemporaryDirectory(prefix="rigserve-bench-export-") as tmp:
        repo = Path(tmp) / "repo"
        options = ExportOptions(precisions=("fp32", "int8"), triton=True,
                                max_batch=max(batches), progress=True)
        t0 = time.perf_counter()
        if args.run:
            from rigserve.training.checkpoint import load_run

            loaded = load_run(args.run)
            manifest = export_run(args.run, repo, options)
        else:
            loaded = _default_run(modalities, args.tiny)
            manifest = export_loaded(loaded, repo, options)
        export_s = time.perf_counter() - t0
        rss = peak_rss_mib()
        rows = _latency_rows(loaded, repo, manifest, batches=batches, iters=args.iters,
                             threads=args.threads)
        gpu_rows, gpu_note = _gpu_rows(repo, manifest, loaded, batches, args.iters)
    n_sub = len(manifest.subsets())
    body = (
        f"Model: {'run ' + args.run if args.run else 'default config'}"
        f"{' (tiny)' if args.tiny else ''}, modalities {'+'.join(loaded.modalities)}.\n\n"
        f"**Export** of {n_sub} subsets (ONNX fp32 + static INT8 + Triton copies, each "
        f"parity-checked on {options.parity_frames} frames): **{export_s:.1f} s** "
        f"(target <= 60 s on 2 cores), peak RSS of the process {rss:.0f} MiB.\n\n"
        f"Latency, median ms per call, {args.threads} intra-op thread(s), {args.iters} runs:\n\n"
        + markdown_table(["subset", "batch", "PyTorch eager", "ORT fp32", "ORT int8",
                          "int8 accuracy delta"], rows)
    )
    if gpu_rows:
        body += "\n\nGPU, median ms per call (FP16 engines):\n\n" + markdown_table(
            ["subset", "batch", "TensorRT plan", "ORT TensorRT EP", "ORT CUDA", "ORT CPU"],
            gpu_rows)
    else:
        body += f"\n\n{gpu_note}"
    print(body)
    if args.write:
        write_section("export", "Export: time, and ORT fp32 / int8 vs PyTorch latency", body,
                      command_line())
    return 0
