"""`rigserve simulate`: write a synthetic rig's recordings in the MM-Fi layout."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

_DESCRIPTION = """\
Simulate a sensor rig (depth camera, LiDAR, mmWave radar, WiFi CSI, plus RGB/infrared
2-D keypoints) watching subjects perform MM-Fi's 27 actions in its 4 rooms, and write
OUT/E0x/Sxx/Axx/{depth,lidar,mmwave,wifi-csi,rgb,infra1,infra2}/frameNNN.* and
ground_truth.npy exactly as the MM-Fi dataset lays them out. Deterministic for a seed:
any subset of sequences reproduces the same files."""

_EPILOG = """\
examples:
  rigserve simulate --out data/rig         # all 40 subjects x 27 actions x 297 frames
  rigserve simulate --out data/tiny --subjects S01,S11 --actions A01-A05 --frames 30
  rigserve simulate --out data/demo --subjects S01-S04 --frames 60 --depth-size 120x160
  rigserve simulate --out data/e4 --environments E04 --frames 60
  rigserve simulate --out data/noisy-wifi --subjects S01-S03 --quality wifi=0.1,mmwave=0.4
  rigserve simulate --out data/depth-only --subjects S01 --modalities depth

subjects live in their MM-Fi room: S01-S10 in E01, S11-S20 in E02, S21-S30 in E03, S31-S40 in E04.
quality is per sensor in [0, 1] (1 clean, 0 nearly pure noise); defaults: depth 0.9, lidar 0.9,
mmwave 0.7, wifi 0.5.
"""


def expand_codes(text: str, prefix: str) -> list[str]:
    """'S01,S03-S05' -> ['S01', 'S03', 'S04', 'S05'] (for the given one-letter prefix)."""
    out: list[str] = []
    for part in filter(None, (p.strip().upper() for p in text.split(","))):
        m = re.fullmatch(rf"{prefix}(\d+)(?:-{prefix}?(\d+))?", part)
        if not m:
            raise argparse.ArgumentTypeError(
                f"expected codes like {prefix}01,{prefix}03-{prefix}05, got {part!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise argparse.ArgumentTypeError(f"empty range {part!r}")
        out += [f"{prefix}{i:02d}" for i in range(lo, hi + 1)]
    return out


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected HxW like 120x160, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _quality(text: str) -> dict[str, float]:
    from rigserve.sensors.simulator.quality import parse_quality

    try:
        return dict(parse_quality(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: Any) -> None:
    p = sub.add_parser("simulate", help="write a synthetic rig's recordings in the MM-Fi layout",
                       description=_DESCRIPTION, epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="root folder to write E0x/Sxx/Axx into")
    p.add_argument("--environments", type=lambda s: expand_codes(s, "E"), metavar="E01,E02",
                   help="rooms to simulate (default: all four, or those of --subjects)")
    p.add_argument("--subjects", type=lambda s: expand_codes(s, "S"), metavar="S01-S10",
                   help="subjects (default: every subject of the chosen rooms)")
    p.add_argument("--actions", type=lambda s: expand_codes(s, "A"), metavar="A01-A27",
                   help="actions (default: all 27)")
    p.add_argument("--frames", type=int, default=297, metavar="N",
                   help="frames per sequence at 10 Hz (default: 297, as in MM-Fi)")
    p.add_argument("--depth-size", type=parse_size, default=(480, 640), metavar="HxW",
                   help="depth image size (default: MM-Fi's native 480x640; the demo uses 60x80)")
    p.add_argument("--quality", type=_quality, default={}, metavar="NAME=Q,...",
                   help="sensor quality in [0, 1], e.g. wifi=0.3,lidar=0.5")
    p.add_argument("--modalities", type=lambda s: [m.strip() for m in s.split(",") if m.strip()],
                   metavar="LIST",
                   help="modalities to write "
                   "(default: all: depth,lidar,mmwave,wifi,rgb,infra1,infra2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel processes (default: one per CPU core)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rigserve.sensors.simulator import select_sequences, simulate

    try:
        total = len(select_sequences(args.environments, args.subjects, args.actions)) * args.frames
    except ValueError as exc:
        print(f"rigserve simulate: error: {exc}", file=sys.stderr)
        return 2
    # The bar opens with the first finished sequence, after simulate() has checked its
    # arguments: an error is then one line, not a line behind an empty progress bar.
    bars: list[Any] = []

    def progress(frames: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="frame", desc="simulating"))
        bars[0].update(frames)

    try:
        summary = simulate(args.out, environments=args.environments, subjects=args.subjects,
                           actions=args.actions, frames=args.frames, depth_size=args.depth_size,
                           quality=args.quality, seed=args.seed, modalities=args.modalities,
                           workers=args.workers, progress=progress)
    except (ValueError, OSError) as exc:  # OSError: a read-only or full output disk
        print(f"rigserve simulate: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    finally:
        for bar in bars:
            bar.close()
    q = ", ".join(f"{k}={v:g}" for k, v in summary.quality.items())
    print(f"wrote {len(summary.sequences)} sequences, {summary.frames} frames, "
          f"{summary.files} files "
          f"({summary.bytes / 2**20:.1f} MiB) to {summary.root} in {summary.seconds:.1f} s "
          f"({summary.frames_per_s:.0f} frames/s)")
    print(f"  modalities: {', '.join(summary.modalities)}; depth {summary.depth_size[0]}x"
          f"{summary.depth_size[1]}; quality: {q}; seed {summary.seed}")
    print(f"  layout: {summary.root}/E0x/Sxx/Axx/<modality folder>/frameNNN.* + ground_truth.npy")
    return 0
