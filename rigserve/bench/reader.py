"""reader frames per second: MM-Fi decode, preprocessing and MMFiDataset.to_arrays().

Times the data path training and the server share, per modality: decoding frame files
(single thread), batched preprocessing to model inputs, and the dataset's end-to-end
``to_arrays()`` with all modalities (1 thread and a pool). Runs on ``--data DIR`` (any
MM-Fi-layout folder) or on a folder the simulator writes first (native 480x640 depth).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from rigserve.bench._report import command_line, markdown_table, write_section

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rigserve.cli.simulate import parse_size

    parser.add_argument("--data", type=Path, help="an MM-Fi-layout folder (default: simulate one)")
    parser.add_argument("--subjects", default="S01,S02", help="simulated subjects")
    parser.add_argument("--actions", default="A01,A02", help="simulated actions")
    parser.add_argument("--frames", type=int, default=30, help="simulated frames per sequence")
    parser.add_argument("--depth-size", type=parse_size, default=(480, 640), metavar="HxW",
                        help="simulated depth H x W")
    parser.add_argument("--workers", type=int, default=4, help="threads for to_arrays()")
    parser.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")


def _files(index: Any, modality: str) -> list[Path]:
    from rigserve.sensors.formats import frame_path

    return [frame_path(index.root, s.env, s.subject, s.action, modality, i)
            for s in index for i in s.frames.get(modality, ())]


def _per_modality(index: Any) -> list[list[object]]:
    from rigserve.sensors.formats import read_frame
    from rigserve.sensors.preprocess import PreprocessSpec, preprocess_frames

    rows: list[list[object]] = []
    for m in index.modalities:
        files = _files(index, m)
        read_frame(m, files[0])  # warm-up: codec imports are not decode time
        start = time.perf_counter()
        raws = [read_frame(m, f) for f in files]
        decode_s = time.perf_counter() - start
        start = time.perf_counter()
        preprocess_frames(m, raws, PreprocessSpec())
        pre_s = time.perf_counter() - start
        rows.append([m, len(files), len(files) / decode_s, len(files) / pre_s])
    return rows


def _model_inputs(index: Any) -> tuple[str, ...]:
    from rigserve.sensors.specs import MODALITIES

    return tuple(m for m in index.modalities if MODALITIES[m].model_input)


def _to_arrays_fps(index: Any, workers: int) -> float:
    from rigserve.sensors.dataset import MMFiDataset

    ds = MMFiDataset(index, None, _model_inputs(index), cache=False)
    ds[0]  # warm-up: first-call costs (lazy imports, preprocessing tables) are not read time
    start = time.perf_counter()
    ds.to_arrays(workers=workers)
    return len(ds) / (time.perf_counter() - start)


def _measure(root: Path, workers: int, source: str) -> str:
    from rigserve.sensors.dataset import MMFiIndex

    start = time.perf_counter()
    index = MMFiIndex.scan(root)
    scan_s = time.perf_counter() - start
    per_mod = markdown_table(["modality", "frames", "decode frames/s", "preprocess frames/s"],
                             _per_modality(index))
    e2e = [[f"to_arrays(), {'+'.join(_model_inputs(index))}", w, _to_arrays_fps(index, w)]
           for w in sorted({1, workers})]
    end_to_end = markdown_table(["path", "threads", "frames/s (all modalities)"], e2e)
    return (f"Data: {source}; index scan of {len(index)} sequences took {scan_s * 1e3:.1f} ms.\n\n"
            f"{per_mod}\n\n{end_to_end}\n")


def _simulated(args: argparse.Namespace, out: Path) -> str:
    from rigserve.cli.simulate import expand_codes
    from rigserve.sensors.simulator import simulate

    h, w = args.depth_size
    summary = simulate(out, subjects=expand_codes(args.subjects, "S"),
                       actions=expand_codes(args.actions, "A"), frames=args.frames,
                       depth_size=(h, w), seed=0)
    return (f"simulated {len(summary.sequences)} sequences x {args.frames} frames, "
            f"depth {h}x{w}")


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="rigserve-reader-") as tmp:
        if args.data is not None:
            root, source = args.data, str(args.data)
        else:
            root = Path(tmp)
            source = _simulated(args, root)
        body = _measure(root, args.workers, source)
    print(body)
    if args.write:
        write_section("reader", "Reader frames per second", body, command_line())
    return 0
