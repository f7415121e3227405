"""``simulate()``: render sequences of the synthetic rig and write them in the MM-Fi layout.

Each E/S/A sequence is independent (its randomness comes from ``(seed, env, subject,
action)`` and, per modality, from the modality's name), so sequences run in a process
pool and any subset of sequences or modalities reproduces the same files. Every file
goes through :mod:`rigserve.sensors.formats`, so readers see exactly MM-Fi's layout.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..formats import (
    encode_frame,
    frame_filename,
    ground_truth_path,
    sequence_dir,
    write_ground_truth,
)
from ..specs import ACTION_CODES, ENVIRONMENTS, MODALITIES, SUBJECTS, environment_of, get_modality
from .motion import Sequence, generate_sequence
from .quality import resolve_quality
from .render import RENDERERS, RenderContext, Rendered, Renderer, build_renderer

logger = logging.getLogger(__name__)

#: The demo's depth size; the native MM-Fi frame is 480 x 640.
DEMO_DEPTH_SIZE = (120, 160)
MMFI_FRAMES = 297

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SequenceJob:
    root: str
    env: str
    subject: str
    action: str
    frames: int
    depth_size: tuple[int, int]
    quality: dict[str, float]
    seed: int
    modalities: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.env}/{self.subject}/{self.action}"


@dataclass
class SimulationSummary:
    root: str
    sequences: list[str]
    frames: int
    files: int
    bytes: int
    seconds: float
    modalities: tuple[str, ...]
    quality: dict[str, float]
    depth_size: tuple[int, int]
    seed: int
    per_sequence_frames: dict[str, int] = field(default_factory=dict)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"frames_per_s": self.frames_per_s}


def modality_rng(job: SequenceJob, modality: str) -> np.random.Generator:
    """Independent stream per (sequence, modality): dropping a modality changes no other."""
    key = [job.seed, 3, ENVIRONMENTS.index(job.env), SUBJECTS.index(job.subject),
           ACTION_CODES.index(job.action), *modality.encode()]
    return np.random.default_rng(key)


def prepare(job: SequenceJob) -> tuple[Sequence, dict[str, tuple[Renderer, np.random.Generator]]]:
    """The sequence's ground truth and, per modality, its renderer and random stream."""
    seq = generate_sequence(job.seed, job.env, job.subject, job.action, job.frames)
    ctx = RenderContext(seq, job.depth_size, job.quality)
    return seq, {m: (build_renderer(m, ctx), modality_rng(job, m))
                 for m in job.modalities}


def render_sequence(job: SequenceJob) -> dict[str, list[Rendered]]:
    """All frames of one sequence in memory (modality -> frames); nothing is written."""
    _, renderers = prepare(job)
    return {m: [render(i, rng) for i in range(job.frames)]
            for m, (render, rng) in renderers.items()}


def write_sequence(job: SequenceJob) -> tuple[str, int, int, int]:
    """Render and write one sequence; returns (key, frames, files, bytes).

    The same files as ``formats.write_frame`` per frame, with the per-file overhead it
    cannot avoid hoisted out of the loop: each modality folder is created once, and the
    byte count comes from the encoded data rather than a ``stat`` of every file.
    """
    seq, renderers = prepare(job)
    gt = write_ground_truth(ground_truth_path(job.root, job.env, job.subject, job.action),
                            seq.joints)
    files, nbytes = 1, gt.stat().st_size
    seq_dir = sequence_dir(job.root, job.env, job.subject, job.action)
    for modality, (render, rng) in renderers.items():
        folder = seq_dir / get_modality(modality).folder
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(job.frames):
            frame = render(i, rng)
            path = folder / frame_filename(modality, i + 1)
            data = encode_frame(modality, frame.array, target=str(path), **frame.extra)
            path.write_bytes(data)
            nbytes += len(data)
            files += 1
    return job.key, job.frames, files, nbytes


def usable_cpus(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may really use: its affinity mask, capped by a cgroup v2 CPU quota.

    ``os.cpu_count()`` is the host's count; in a container limited to 2 CPUs on a 32-core
    node it would start 32 render processes that fight over 2 CPUs' worth of time.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]  # "200000 100000" or "max ..."
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota visible: the affinity mask is the limit
    return max(1, cpus)


def select_sequences(environments: Iterable[str] | None, subjects: Iterable[str] | None,
                     actions: Iterable[str] | None) -> list[tuple[str, str, str]]:
    """(env, subject, action) triples; subjects live in their MM-Fi environment."""
    envs = _checked("environment", environments, ENVIRONMENTS)
    subs = _checked("subject", subjects, SUBJECTS)
    acts = _checked("action", actions, ACTION_CODES) or list(ACTION_CODES)
    if subs is None:
        subs = [s for s in SUBJECTS if envs is None or environment_of(s) in envs]
    chosen = [s for s in subs if envs is None or environment_of(s) in envs]
    if not chosen:
        raise ValueError(f"no subject of {subs} lives in environments {envs} "
                         "(S01-S10: E01, S11-S20: E02, S21-S30: E03, S31-S40: E04)")
    return [(environment_of(s), s, a) for s in chosen for a in acts]


def _checked(what: str, codes: Iterable[str] | None, universe: tuple[str, ...]) -> list[str] | None:
    if codes is None:
        return None
    out = list(dict.fromkeys(codes))
    bad = [c for c in out if c not in universe]
    if bad:
        raise ValueError(f"unknown {what}(s) {bad}; accepted: {universe[0]}..{universe[-1]}")
    return out or None


def simulate(out_dir: str | os.PathLike[str], *, environments: Iterable[str] | None = None,
             subjects: Iterable[str] | None = None, actions: Iterable[str] | None = None,
             frames: int = MMFI_FRAMES, depth_size: tuple[int, int] = (480, 640),
             quality: Mapping[str, float] | None = None, seed: int = 0,
             modalities: Iterable[str] | None = None, workers: int | None = None,
             progress: Progress | None = None) -> SimulationSummary:
    """Simulate the rig and write ``out_dir/E0x/Sxx/Axx/...`` exactly as MM-Fi lays it out.

    ``environments``/``subjects``/``actions`` select sequences (default: all 40 x 27);
    ``quality`` overrides per-sensor quality in [0, 1]; ``workers`` processes render
    sequences in parallel (default: one per usable CPU); ``progress(n)`` is called with the
    frame count of each finished sequence.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1 (or None for one per CPU core), got {workers}")
    h, w = (int(v) for v in depth_size)
    if h < 8 or w < 8:
        raise ValueError(f"depth_size must be at least 8x8 (H, W), got {depth_size}")
    mods = (tuple(dict.fromkeys(modalities)) if modalities is not None
            else tuple(m for m in MODALITIES if m in RENDERERS))
    unknown = [m for m in mods if m not in RENDERERS]
    if unknown or not mods:
        raise ValueError(f"modalities {unknown or '(none)'} cannot be simulated; "
                         f"accepted: {', '.join(RENDERERS)}")
    q = resolve_quality(quality)
    triples = select_sequences(environments, subjects, actions)
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise ValueError(f"output {root} exists and is not a folder; give a new or existing "
                         "folder")
    jobs = [SequenceJob(str(root), e, s, a, frames, (h, w), q, seed, mods) for e, s, a in triples]
    n_workers = max(1, min(workers or usable_cpus(), len(jobs)))
    logger.info("simulating %d sequences x %d frames with %d worker(s) into %s",
                len(jobs), frames, n_workers, root)
    start = time.perf_counter()
    results = list(_run(jobs, n_workers, progress))
    seconds = time.perf_counter() - start
    results.sort()
    return SimulationSummary(
        root=str(root), sequences=[k for k, *_ in results], frames=sum(r[1] for r in results),
        files=sum(r[2] for r in results), bytes=sum(r[3] for r in results), seconds=seconds,
        modalities=mods, quality=q, depth_size=(h, w), seed=seed,
        per_sequence_frames={k: n for k, n, *_ in results},
    )


def _run(jobs: list[SequenceJob], workers: int, progress: Progress | None
         ) -> Iterable[tuple[str, int, int, int]]:
    if workers == 1:
        for job in jobs:
            result = write_sequence(job)
            if progress:
                progress(result[1])
            yield result
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(write_sequence, job) for job in jobs]
        for fut in as_completed(futures):
            result = fut.result()
            if progress:
                progress(result[1])
            yield result
