"""``export_run``: a training run becomes a verified model repository (docs/contracts.md).

Per non-empty modality subset: export the PyTorch subset model to one portable ONNX
graph, build every requested engine from it (fp32 ONNX always: it is the reference
engine and the server's fallback), run each engine on held-out frames and compare with
PyTorch, then write ``manifest.json``. Everything is built in a staging folder beside
REPO and moved into place only after every engine passed, so a failed export never
leaves a half-published repository and a running server never sees one.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from rigserve.export.engines import BuildContext, get_backend
from rigserve.export.errors import ExportError
from rigserve.export.frames import HeldOutFrames, held_out_frames
from rigserve.export.manifest import (
    EngineEntry,
    Manifest,
    load_manifest,
    manifest_schema,
    sha256_file,
    write_manifest,
)
from rigserve.export.onnx_export import EXPORTERS, OPTIMIZATION_LEVELS, export_onnx
from rigserve.export.parity import accuracy_delta, check_fp32, max_abs_errors
from rigserve.export.repository import (
    check_target,
    code_version,
    engine_weights,
    modality_entries,
    output_entries,
    publish,
)
from rigserve.export.runtime import run_in_batches
from rigserve.export.triton import tensors, write_triton_model
from rigserve.sensors.specs import all_subsets, parse_subset, subset_name
from tqdm import tqdm

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ExportOptions:
    """What to build. ``precisions`` adds engines next to the fp32 ONNX reference."""

    formats: tuple[str, ...] = ("onnx",)
    precisions: tuple[str, ...] = ("fp32",)
    max_batch: int = 32
    triton: bool = False
    model_name: str = "rig"
    opset: int = 18
    exporter: str = "torchscript"
    optimization: str = "extended"
    parity_frames: int = 32
    calibration_frames: int = 32
    fp32_tolerance: float = 1e-4
    #: Only these subsets (names like ``depth+lidar``); None = every non-empty subset.
    subsets: tuple[str, ...] | None = None
    progress: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        _check_choices("format", self.formats, FORMATS)
        _check_choices("precision", self.precisions, PRECISIONS)
        _check_choices("exporter", (self.exporter,), tuple(EXPORTERS))
        _check_choices("optimization", (self.optimization,), tuple(OPTIMIZATION_LEVELS))
        pattern = manifest_schema()["properties"]["model"]["pattern"]
        if not re.search(pattern, self.model_name):  # checked again on the manifest, late
            raise ExportError(f"model name {self.model_name!r} is not accepted: letters, "
                              "digits, '_' and '-' only (it names engines and URLs)")
        if self.max_batch < 1:
            raise ExportError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.parity_frames < 2 or self.calibration_frames < 1:
            raise ExportError("parity_frames must be >= 2 and calibration_frames >= 1, got "
                              f"{self.parity_frames} and {self.calibration_frames}")

    def plan(self) -> list[tuple[str, str]]:
        """(format, precision) of every engine per subset; fp32 ONNX first, always."""
        wanted = [("onnx", "fp32")]
        for fmt in self.formats:
            for precision in self.precisions:
                if (fmt, precision) not in wanted:
                    wanted.append((fmt, precision))
        return wanted


def _check_choices(what: str, values: tuple[str, ...], accepted: tuple[str, ...]) -> None:
    bad = [v for v in values if v not in accepted]
    if bad or not values:
        raise ExportError(f"unknown {what} {bad or list(values)}; accepted: {', '.join(accepted)}")


@dataclass
class _Subset:
    """One subset's export state while it is being built."""

    subset: tuple[str, ...]
    reference: dict[str, np.ndarray] = field(default_factory=dict)
    entries: list[EngineEntry] = field(default_factory=list)

    @property
    def name(self) -> str:
        return subset_name(self.subset)


def export_run(run_dir: str | Path, out_dir: str | Path,
               options: ExportOptions | None = None) -> Manifest:
    """Export the run at ``run_dir`` into the model repository ``out_dir``."""
    from rigserve.training.checkpoint import load_run

    loaded = load_run(run_dir)
    folder = Path(run_dir)
    folder = folder if folder.is_dir() else folder.parent  # RUN or RUN/checkpoint.pt
    return export_loaded(loaded, out_dir, options or ExportOptions(), run_dir=folder)


def export_loaded(run: Any, out_dir: str | Path, options: ExportOptions, *,
                  run_dir: Path | None = None) -> Manifest:
    """Export an already loaded run (``rigserve.training.checkpoint.LoadedRun``)."""
    out = Path(out_dir)
    try:
        check_target(out)
    except FileExistsError as exc:
        raise ExportError(str(exc)) from None
    plan = _checked_plan(options)
    subsets = _subsets(run.modalities, options)
    shapes = _input_shapes(run)
    frames = held_out_frames(run_dir, run.config, run.modalities, run.spec, shapes,
                             frames=options.parity_frames,
                             calibration=options.calibration_frames, seed=options.seed)
    logger.info("exporting %d subsets x %s; parity on %s", len(subsets),
                ", ".join(f"{f} {p}" for f, p in plan), frames.source)
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the repository from a server user
    try:
        built = [
            _export_subset(run, sub, plan=plan, shapes=shapes, frames=frames, repo=staging,
                           options=options)
            for sub in tqdm(subsets, desc="export", unit="subset", disable=not options.progress)
        ]
        manifest = _manifest(run, built, shapes, options, frames.source)
        write_manifest(staging, manifest)
        _save_run_config(run, run_dir, staging)
        load_manifest(staging, verify=True)  # what the server will do, before publishing
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("exported %d engines to %s in %.1f s", len(manifest.engines), out,
                time.perf_counter() - started)
    return manifest


def _checked_plan(options: ExportOptions) -> list[tuple[str, str]]:
    plan = options.plan()
    for fmt, precision in plan:
        try:
            backend = get_backend(fmt, precision)
        except KeyError as exc:
            raise ExportError(str(exc.args[0])) from None
        reason = backend.unavailable()
        if reason:
            raise ExportError(f"cannot build {fmt} {precision} engines on this machine: {reason}")
    return plan


def _subsets(modalities: tuple[str, ...], options: ExportOptions) -> list[tuple[str, ...]]:
    every = all_subsets(modalities)
    if options.subsets is None:
        return every
    chosen = []
    for name in options.subsets:
        try:
            subset = parse_subset(name)
        except (KeyError, ValueError) as exc:
            raise ExportError(f"subset {name!r}: {exc}") from None
        if subset not in every:
            raise ExportError(f"subset {name!r} is not a subset of the run's modalities "
                              f"{list(modalities)}")
        chosen.append(subset)
    return chosen


def _input_shapes(run: Any) -> dict[str, tuple[int, ...]]:
    """Model-input shape per modality (no batch axis), from the run or the preprocessing."""
    from rigserve.sensors.preprocess import model_input_shape

    recorded = getattr(run, "input_shapes", None) or {}
    return {m: tuple(recorded.get(m) or model_input_shape(m, run.spec)) for m in run.modalities}


def _torch_outputs(module: torch.nn.Module, names: tuple[str, ...],
                   feeds: Mapping[str, np.ndarray], subset: tuple[str, ...], batch: int
                   ) -> dict[str, np.ndarray]:
    def runner(part: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            outs = module(*(torch.from_numpy(np.ascontiguousarray(part[m])) for m in subset))
        outs = tuple(outs.values()) if isinstance(outs, dict) else tuple(outs)
        return {n: o.detach().cpu().numpy() for n, o in zip(names, outs, strict=True)}

    return run_in_batches(runner, feeds, batch)


def _export_subset(run: Any, subset: tuple[str, ...], *, plan: list[tuple[str, str]],
                   shapes: Mapping[str, tuple[int, ...]], frames: HeldOutFrames, repo: Path,
                   options: ExportOptions) -> _Subset:
    state = _Subset(subset)
    module = run.model.subset_model(subset).eval()
    names = tuple(getattr(module, "output_names", None) or run.model.output_names)
    feeds = frames.feeds(subset)
    state.reference = _torch_outputs(module, names, feeds, subset, options.max_batch)
    output_shapes = {n: (-1, *v.shape[1:]) for n, v in state.reference.items()}
    with tempfile.TemporaryDirectory(prefix="rigserve-onnx-") as tmp:
        portable = Path(tmp) / f"{state.name}.onnx"
        # Trace at batch 2: a batch of 1 invites tracers to specialise broadcasting on it.
        example = tuple(torch.from_numpy(np.ascontiguousarray(feeds[m][:2])) for m in subset)
        try:
            export_onnx(module, example, subset, output_shapes, portable,
                        exporter=options.exporter, opset=options.opset)
        except Exception as exc:
            raise ExportError(f"subset {state.name}: ONNX export failed: {exc}") from exc
        ctx = BuildContext(
            subset_name=state.name, portable=portable, repo=repo,
            input_shapes={m: tuple(shapes[m]) for m in subset},
            calibration=frames.calibration_feeds(subset), max_batch=options.max_batch,
            optimization=options.optimization)
        for fmt, precision in plan:
            state.entries.append(_build_engine(run, state, ctx, fmt=fmt, precision=precision,
                                               frames=frames, options=options))
        if options.triton:
            _write_triton(state, ctx, output_shapes, frames, options)
    return state


def _parity(runner: Any, feeds: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray],
            max_batch: int) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Engine outputs at batch ``max_batch`` and the max abs errors vs PyTorch.

    The first frames are re-run at batch 1 and 3 too: batch sizes other than the traced
    one (2) catch a batch size baked into the graph.
    """
    outputs = run_in_batches(runner, feeds, max_batch)
    errors = max_abs_errors(reference, outputs)
    for size in (1, 3):
        head = runner({k: v[:size] for k, v in feeds.items()})
        more = max_abs_errors({k: v[:size] for k, v in reference.items()}, head)
        errors = {k: max(v, more[k]) for k, v in errors.items()}
    return outputs, errors


def _build_engine(run: Any, state: _Subset, ctx: BuildContext, *, fmt: str, precision: str,
                  frames: HeldOutFrames, options: ExportOptions) -> EngineEntry:
    label = f"{options.model_name}.{state.name} ({fmt} {precision})"
    try:
        built = get_backend(fmt, precision).build(ctx)
        outputs, errors = _parity(built.runner, frames.feeds(state.subset), state.reference,
                                  options.max_batch)
    except Exception as exc:
        raise ExportError(f"engine {label}: build or run failed: {exc}") from exc
    if precision == "fp32":
        try:
            check_fp32(label, errors, state.reference, options.fp32_tolerance)
        except Exception as exc:
            raise ExportError(str(exc)) from exc
    delta = accuracy_delta(outputs, state.reference, frames.joints, frames.actions)
    logger.info("%s: parity %s, accuracy delta %s", label, errors, delta)
    return EngineEntry(
        name=f"{options.model_name}.{state.name}", subset=state.subset, inputs=state.subset,
        path=built.path, format=fmt, precision=precision,
        sha256=sha256_file(ctx.repo / built.path),
        max_batch=options.max_batch,
        metrics={k: float(v) for k, v in run.metrics.get(state.name, {}).items()
                 if isinstance(v, int | float)},
        weights=engine_weights(run, state.subset),
        parity={**errors, "frames": float(len(frames))},
        accuracy_delta=delta, outputs=tuple(state.reference),
    )


def _write_triton(state: _Subset, ctx: BuildContext, output_shapes: Mapping[str, tuple[int, ...]],
                  frames: HeldOutFrames, options: ExportOptions) -> None:
    """Triton gets the portable graph (standard ops): its ORT backend may run on a GPU."""
    from rigserve.export.runtime import OrtRunner

    runner = OrtRunner(ctx.portable)
    _, errors = _parity(runner, frames.feeds(state.subset), state.reference, options.max_batch)
    check_fp32(f"triton {options.model_name}.{state.name}", errors, state.reference,
               options.fp32_tolerance)
    inputs = {m: (-1, *ctx.input_shapes[m]) for m in state.subset}
    write_triton_model(ctx.repo / "triton", f"{options.model_name}.{state.name}", ctx.portable,
                       fmt="onnx", inputs=tensors(inputs), outputs=tensors(output_shapes),
                       max_batch=options.max_batch)


def _manifest(run: Any, built: list[_Subset], shapes: Mapping[str, tuple[int, ...]],
              options: ExportOptions, source: str) -> Manifest:
    from rigserve import __version__

    return Manifest(
        model=options.model_name,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        rigserve_version=__version__, code_version=code_version(),
        preprocessing=run.spec.to_dict(),
        modalities=modality_entries(run.modalities, shapes),
        outputs=output_entries(built[0].reference),
        engines=tuple(e for sub in built for e in sub.entries),
        training={"strategy": run.strategy, "config": _plain(run.config),
                  "validation_frames": source},
    )


def _plain(obj: Any) -> Any:
    """JSON-ready copy of a config (tuples -> lists)."""
    return yaml.safe_load(yaml.safe_dump(obj))


def _save_run_config(run: Any, run_dir: Path | None, repo: Path) -> None:
    target = repo / "run" / "config.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    source = run_dir / "config.yaml" if run_dir is not None else None
    if source is not None and source.is_file():
        shutil.copyfile(source, target)
    else:
        target.write_text(yaml.safe_dump(_plain(run.config), sort_keys=False))
