"""simulator frames per second: the synthetic rig writing MM-Fi files, and reading them back.

Times ``rigserve simulate`` end to end (motion, every sensor's rendering, encoding and
writing the files) with all modalities at the demo depth size and at MM-Fi's native
480x640, with one process and with the pool; then the per-frame cost of each sensor
model and of its file encoder in memory; then how fast the scratch file system creates
files, which bounds everything above (a frame is 7 files); then how fast
``MMFiDataset.to_arrays()`` reads the written folder back. The issue's target: >= 200
frames/s at the demo size on 2 cores, files included.

One small unmeasured warm-up run comes first (imports and first-call costs are not the
simulator's speed). Every run writes a fresh folder and nothing is deleted until the end:
ext4 skips recently deleted inodes when it allocates new ones (``recently_deleted()``,
most of the kernel time of file creation on a disk with create/delete churn), so deleting
one run's files would slow the next run's file creation.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rigserve.bench._report import command_line, markdown_table, write_section


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subjects", default="S01,S11,S21,S31", help="subjects to simulate")
    parser.add_argument("--actions", default="A01-A04", help="actions to simulate")
    parser.add_argument("--frames", type=int, default=60, help="frames per sequence")
    parser.add_argument("--sizes", default="120x160,480x640",
                        help="depth sizes HxW to time, comma-separated (first = demo size)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes for the pooled run (default: every usable CPU)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="folder to write the simulated files under (default: the system "
                        "temp folder; file creation speed depends on its file system)")
    parser.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")


def _simulate(args: argparse.Namespace, root: Path, size: tuple[int, int], workers: int) -> Any:
    from rigserve.cli.simulate import expand_codes
    from rigserve.sensors.simulator import simulate

    return simulate(root, subjects=expand_codes(args.subjects, "S"),
                    actions=expand_codes(args.actions, "A"), frames=args.frames,
                    depth_size=size, workers=workers)


def _write_rows(args: argparse.Namespace, tmp: Path) -> tuple[list[list[object]], Path, float]:
    from rigserve.cli.simulate import parse_size
    from rigserve.sensors.simulator.runner import usable_cpus

    sizes = [parse_size(s) for s in args.sizes.split(",")]
    warm_up = argparse.Namespace(**vars(args) | {"subjects": args.subjects.split(",")[0],
                                                 "actions": "A01", "frames": 2})
    _simulate(warm_up, tmp / "warm-up", sizes[0], 1)
    rows: list[list[object]] = []
    demo_root, files_per_frame = tmp / "demo", 0.0
    for k, size in enumerate(sizes):
        for workers in sorted({1, args.workers or usable_cpus()}):
            first = k == 0 and workers == 1  # the reader reads this one back
            before = _cpu_seconds()
            s = _simulate(args, demo_root if first else tmp / f"run-{k}-{workers}", size, workers)
            user_ms, sys_ms = _cpu_ms(before, s.frames)
            rows.append([f"{size[0]}x{size[1]}", workers, s.frames, s.frames_per_s, user_ms,
                         sys_ms, s.bytes / s.frames / 1024])
            files_per_frame = s.files / s.frames
    return rows, demo_root, files_per_frame


def _cpu_seconds() -> tuple[float, float]:
    """User and kernel CPU seconds so far of this process and its reaped pool workers."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + kids.ru_utime, own.ru_stime + kids.ru_stime


def _cpu_ms(before: tuple[float, float], frames: int) -> tuple[float, float]:
    after = _cpu_seconds()
    return 1e3 * (after[0] - before[0]) / frames, 1e3 * (after[1] - before[1]) / frames


def _sensor_rows(size: tuple[int, int], frames: int) -> list[list[object]]:
    """Per sensor: render and encode ms per frame, in memory; the last row sums them."""
    from rigserve.sensors.formats import encode_frame
    from rigserve.sensors.simulator import RENDERERS, SequenceJob, resolve_quality
    from rigserve.sensors.simulator.runner import prepare

    job = SequenceJob("unused", "E01", "S01", "A06", frames, size, resolve_quality(None), 0,
                      tuple(RENDERERS))
    start = time.perf_counter()
    _, renderers = prepare(job)
    setup_ms = 1e3 * (time.perf_counter() - start)
    rows: list[list[object]] = [["motion + static scene (per sequence)", setup_ms, "", ""]]
    total_render = total_encode = 0.0
    for modality, (render, rng) in renderers.items():
        render(0, rng)  # warm-up: first-call costs (imports, caches) are not per frame
        start = time.perf_counter()
        out = [render(i, rng) for i in range(frames)]
        render_ms = 1e3 * (time.perf_counter() - start) / frames
        start = time.perf_counter()
        for frame in out:
            encode_frame(modality, frame.array, **frame.extra)
        encode_ms = 1e3 * (time.perf_counter() - start) / frames
        rows.append([modality, render_ms, encode_ms, ""])
        total_render, total_encode = total_render + render_ms, total_encode + encode_ms
    per_frame = total_render + total_encode + setup_ms / frames
    rows.append(["all sensors, per frame (setup amortised)", total_render, total_encode,
                 1e3 / per_frame])
    return rows


def _file_create_rate(tmp: Path, n: int = 2000) -> float:
    """Files per second one process creates (1 KiB each) in a fresh folder under ``tmp``."""
    folder = tmp / "fs-probe"
    folder.mkdir()
    payload = b"\0" * 1024
    start = time.perf_counter()
    for i in range(n):
        (folder / f"frame{i:04d}.bin").write_bytes(payload)
    rate = n / (time.perf_counter() - start)
    shutil.rmtree(folder)
    return rate


def _reader_fps(root: Path) -> tuple[int, float]:
    from rigserve.sensors.dataset import MMFiDataset

    ds = MMFiDataset(root, None, ("depth", "lidar", "mmwave", "wifi"), cache=False)
    ds[0]  # warm-up: the codecs' imports (Pillow) are not read time
    start = time.perf_counter()
    ds.to_arrays()
    return len(ds), len(ds) / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> int:
    from rigserve.cli.simulate import parse_size

    with tempfile.TemporaryDirectory(prefix="rigserve-simbench-", dir=args.scratch) as tmp:
        rows, demo_root, files_per_frame = _write_rows(args, Path(tmp))
        create_rate = _file_create_rate(Path(tmp))
        n_read, read_fps = _reader_fps(demo_root)
        scratch = Path(tmp).parent
    demo = parse_size(args.sizes.split(",")[0])
    body = (
        f"All modalities (depth, lidar, mmwave, wifi, rgb, infra1, infra2 + ground truth), "
        f"subjects {args.subjects}, actions {args.actions}, {args.frames} frames each; "
        f"files written under {scratch} (kept until the end), after a small unmeasured "
        "warm-up run.\n\n"
        + markdown_table(["depth H x W", "processes", "frames", "frames/s (files written)",
                          "CPU ms/frame, user", "CPU ms/frame, kernel", "KiB per frame"], rows)
        + "\n\nCPU is summed over all processes; kernel time is almost all file creation "
        "(on ext4 with create/delete churn, mostly its scan past recently deleted inodes). "
        "When wall time per frame exceeds CPU time per process, the processes waited: for a "
        "core (other load) or for the file system."
        + f"\n\nIn memory, one process, depth {demo[0]}x{demo[1]}: rendering and encoding each "
        "sensor's file bytes (ms per frame), and the frames/s that leaves before any file "
        "is created:\n\n"
        + markdown_table(["sensor model", "render ms", "encode ms", "frames/s (no files)"],
                         _sensor_rows(demo, args.frames))
        + f"\n\nThe scratch file system creates {create_rate:.0f} files/s in one process; at "
        f"{files_per_frame:.2f} files per frame that alone caps one process at "
        f"{create_rate / files_per_frame:.0f} frames/s.\n"
        + f"\nReading the demo-size folder back: `MMFiDataset(...).to_arrays()` with depth, "
        f"lidar, mmwave, wifi: {n_read} frames at {read_fps:.0f} frames/s "
        "(`rigserve bench reader` has the full reader breakdown).\n"
    )
    print(body)
    if args.write:
        write_section("simulate", "Simulator frames per second", body, command_line())
    return 0
