"""simulator frames per second: the synthetic rig writing MM-Fi files, and reading them back.

Times ``rigserve simulate`` end to end (motion, every sensor's rendering, encoding and
writing the files) with all modalities at the demo depth size and at MM-Fi's native
480x640, with one process and with the pool; then the per-frame cost of each sensor
model in memory; then how fast ``MMFiDataset.to_arrays()`` reads the written folder
back. The issue's target: >= 200 frames/s at the demo size on 2 cores, files included.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from rigserve.bench._report import command_line, markdown_table, write_section


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subjects", default="S01,S11,S21,S31", help="subjects to simulate")
    parser.add_argument("--actions", default="A01-A04", help="actions to simulate")
    parser.add_argument("--frames", type=int, default=60, help="frames per sequence")
    parser.add_argument("--sizes", default="120x160,480x640",
                        help="depth sizes HxW to time, comma-separated (first = demo size)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes for the pooled run (default: all cores)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="folder to write the simulated files under (default: the system "
                        "temp folder; file creation speed depends on its file system)")
    parser.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")


def _write_rows(args: argparse.Namespace, tmp: Path) -> tuple[list[list[object]], Path]:
    from rigserve.cli.simulate import expand_codes, parse_size
    from rigserve.sensors.simulator import simulate

    subjects, actions = expand_codes(args.subjects, "S"), expand_codes(args.actions, "A")
    rows: list[list[object]] = []
    demo_root = tmp / "demo"
    for k, size in enumerate(parse_size(s) for s in args.sizes.split(",")):
        for workers in sorted({1, args.workers}):
            root = demo_root if (k == 0 and workers == 1) else tmp / f"run-{k}-{workers}"
            s = simulate(root, subjects=subjects, actions=actions, frames=args.frames,
                         depth_size=size, workers=workers)
            rows.append([f"{size[0]}x{size[1]}", workers, s.frames, s.frames_per_s,
                         s.bytes / s.frames / 1024])
    return rows, demo_root


def _sensor_rows(size: tuple[int, int], frames: int) -> list[list[object]]:
    from rigserve.sensors.simulator import RENDERERS, SequenceJob, resolve_quality
    from rigserve.sensors.simulator.runner import prepare

    job = SequenceJob("unused", "E01", "S01", "A06", frames, size, resolve_quality(None), 0,
                      tuple(RENDERERS))
    start = time.perf_counter()
    _, renderers = prepare(job)
    rows: list[list[object]] = [["motion + static scene (per sequence)", 1e3 * (
        time.perf_counter() - start)]]
    for modality, (render, rng) in renderers.items():
        start = time.perf_counter()
        for i in range(frames):
            render(i, rng)
        rows.append([modality, 1e3 * (time.perf_counter() - start) / frames])
    return rows


def _reader_fps(root: Path) -> tuple[int, float]:
    from rigserve.sensors.dataset import MMFiDataset

    ds = MMFiDataset(root, None, ("depth", "lidar", "mmwave", "wifi"), cache=False)
    start = time.perf_counter()
    ds.to_arrays()
    return len(ds), len(ds) / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> int:
    from rigserve.cli.simulate import parse_size

    with tempfile.TemporaryDirectory(prefix="rigserve-simbench-", dir=args.scratch) as tmp:
        rows, demo_root = _write_rows(args, Path(tmp))
        n_read, read_fps = _reader_fps(demo_root)
        scratch = Path(tmp).parent
    demo = parse_size(args.sizes.split(",")[0])
    body = (
        f"All modalities (depth, lidar, mmwave, wifi, rgb, infra1, infra2 + ground truth), "
        f"subjects {args.subjects}, actions {args.actions}, {args.frames} frames each; "
        f"files written under {scratch}.\n\n"
        + markdown_table(["depth H x W", "processes", "frames", "frames/s (files written)",
                          "KiB per frame"], rows)
        + f"\n\nPer-sensor render cost in memory, depth {demo[0]}x{demo[1]} (ms per frame):\n\n"
        + markdown_table(["sensor model", "ms"], _sensor_rows(demo, args.frames))
        + f"\n\nReading the demo-size folder back: `MMFiDataset(...).to_arrays()` with depth, "
        f"lidar, mmwave, wifi: {n_read} frames at {read_fps:.0f} frames/s "
        "(`rigserve bench reader` has the full reader breakdown).\n"
    )
    print(body)
    if args.write:
        write_section("simulate", "Simulator frames per second", body, command_line())
    return 0
