"""Index an MM-Fi-layout folder: which sequences, modalities and usable frames it holds.

Works on a real MM-Fi download or a simulated rig alike: ``ROOT/E0x/Sxx/Axx/<modality
folder>/frameNNN.ext`` plus ``ground_truth.npy``. Only directory listings and file sizes
are read (and the ground truth's .npy header), so scanning the full dataset is quick.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import FormatError
from .formats import GROUND_TRUTH_FILE, parse_frame_index
from .specs import ACTION_CODES, MODALITIES, get_modality

logger = logging.getLogger(__name__)

_ENV_RE = re.compile(r"^E\d{2}$")
_SUBJECT_RE = re.compile(r"^S\d{2}$")
_FOLDER_TO_MODALITY = {spec.folder: name for name, spec in MODALITIES.items()}


@dataclass(frozen=True, eq=False)
class MMFiSequence:
    """One ``E0x/Sxx/Axx`` folder: which modalities it holds and which frames are usable."""

    env: str
    subject: str
    action: str
    path: Path
    #: modality -> sorted 1-based indices of non-empty frame files.
    frames: Mapping[str, tuple[int, ...]] = field(repr=False)
    #: modality -> indices of empty frame files (skipped, as the official loader does).
    empty: Mapping[str, tuple[int, ...]] = field(repr=False)
    #: rows in ground_truth.npy (0 when the file is missing).
    gt_frames: int = 0

    @property
    def key(self) -> str:
        return f"{self.env}/{self.subject}/{self.action}"

    @property
    def action_index(self) -> int:
        return ACTION_CODES.index(self.action)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted(m for m, idx in self.frames.items() if idx))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MMFiSequence) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)


def _scan_modality(folder: Path, ext: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    full: list[int] = []
    empty: list[int] = []
    with os.scandir(folder) as it:
        for entry in it:
            index = parse_frame_index(entry.name)
            if index is None or not entry.name.endswith(ext):
                continue
            (full if entry.stat().st_size > 0 else empty).append(index)
    return tuple(sorted(full)), tuple(sorted(empty))


def _gt_rows(path: Path) -> int:
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    # mmap reads only the .npy header: the row count without loading the joints.
    return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])


def _scan_sequence(env: str, subject: str, action: str, path: Path) -> MMFiSequence:
    frames: dict[str, tuple[int, ...]] = {}
    empty: dict[str, tuple[int, ...]] = {}
    with os.scandir(path) as it:
        for entry in it:
            modality = _FOLDER_TO_MODALITY.get(entry.name)
            if modality is None or not entry.is_dir():
                continue
            frames[modality], empty[modality] = _scan_modality(Path(entry.path),
                                                                get_modality(modality).ext)
    return MMFiSequence(env, subject, action, path, frames, empty,
                        _gt_rows(path / GROUND_TRUTH_FILE))


def _subdirs(path: Path, pattern: re.Pattern[str] | None = None,
             allowed: Iterable[str] = ()) -> list[tuple[str, Path]]:
    allowed = set(allowed)
    out = []
    with os.scandir(path) as it:
        for e in it:
            ok = pattern.match(e.name) if pattern else e.name in allowed
            if ok and e.is_dir():
                out.append((e.name, Path(e.path)))
    return sorted(out)


@dataclass(frozen=True)
class MMFiIndex:
    """Every sequence under an MM-Fi-layout root, sorted by key."""

    root: Path
    sequences: tuple[MMFiSequence, ...]
    _by_key: dict[str, MMFiSequence] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {s.key: s for s in self.sequences})

    @classmethod
    def scan(cls, root: str | os.PathLike[str]) -> MMFiIndex:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"MM-Fi root {root} is not a directory")
        seqs = [
            _scan_sequence(env, subj, act, act_dir)
            for env, env_dir in _subdirs(root, _ENV_RE)
            for subj, subj_dir in _subdirs(env_dir, _SUBJECT_RE)
            for act, act_dir in _subdirs(subj_dir, allowed=ACTION_CODES)
        ]
        if not seqs:
            raise FormatError(root, "the MM-Fi layout ROOT/E0x/Sxx/Axx/<modality>/frameNNN.ext",
                              "no E0x/Sxx/Axx sequence folder")
        logger.info("indexed %d sequences under %s", len(seqs), root)
        return cls(root, tuple(seqs))

    def __len__(self) -> int:
        return len(self.sequences)

    def __iter__(self) -> Iterator[MMFiSequence]:
        return iter(self.sequences)

    def __getitem__(self, key: str) -> MMFiSequence:
        seq = self._by_key.get(key)
        if seq is None:
            raise KeyError(f"no sequence {key!r} under {self.root} (keys look like 'E01/S01/A01')")
        return seq

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities present in at least one sequence."""
        return tuple(sorted({m for s in self.sequences for m in s.modalities}))

    @property
    def environments(self) -> tuple[str, ...]:
        return tuple(sorted({s.env for s in self.sequences}))

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(sorted({s.subject for s in self.sequences}))

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(sorted({s.action for s in self.sequences}))
