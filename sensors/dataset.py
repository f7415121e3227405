"""The MM-Fi dataset reader: model-ready frames of any modality subset, lazy and cached.

Indexing lives in :mod:`.index` and splits in :mod:`.splits`; both are re-exported here,
the one place training imports the data path from (docs/contracts.md, "Dataset").
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .errors import FormatError
from .formats import GROUND_TRUTH_FILE, frame_path, read_frame, read_ground_truth
from .index import MMFiIndex, MMFiSequence
from .preprocess import PreprocessSpec, model_input_shape, preprocess_frames
from .specs import SENSOR_MODALITIES, get_modality
from .splits import SPLITS, Split, split_sequences

__all__ = ["SPLITS", "FrameItem", "MMFiDataset", "MMFiIndex", "MMFiSequence", "Split",
           "split_sequences"]

logger = logging.getLogger(__name__)

#: One dataset item: ``{modality: model-ready float32, "joints": (17, 3) float32,
#: "action": int, "key": (env, subject, action, frame)}``.
FrameItem = dict[str, Any]

class MMFiDataset:
    """Frames of some sequences with any subset of modalities, loaded lazily and cached.

    A frame is kept when every selected modality has a non-empty file for it and the
    sequence's ground truth has its row; frames with an empty file are skipped as the
    official loader does (counts in :attr:`skipped`).
    """

    def __init__(self, root: str | os.PathLike[str] | MMFiIndex,
                 sequences: Iterable[MMFiSequence | str] | None = None,
                 modalities: Sequence[str] = SENSOR_MODALITIES,
                 spec: PreprocessSpec | None = None, cache: bool = True) -> None:
        self.index = root if isinstance(root, MMFiIndex) else MMFiIndex.scan(root)
        self.modalities = tuple(modalities)
        if not self.modalities:
            raise ValueError("MMFiDataset needs at least one modality")
        for m in self.modalities:
            get_modality(m)
        self.spec = spec or PreprocessSpec()
        self.cache = cache
        chosen = self.index.sequences if sequences is None else sequences
        self.sequences = tuple(s if isinstance(s, MMFiSequence) else self.index[s] for s in chosen)
        self.skipped: Counter[str] = Counter()
        # (sequence position, 1-based frame index) per item.
        self._frames: list[tuple[int, int]] = []
        for pos, seq in enumerate(self.sequences):
            self._frames += [(pos, i) for i in self._usable_frames(seq)]
        self._items: dict[int, FrameItem] = {}
        self._gt: dict[int, np.ndarray] = {}
        self._arrays: dict[str, np.ndarray] | None = None
        logger.info("dataset: %d frames from %d sequences, modalities %s, skipped %s",
                    len(self._frames), len(self.sequences), "+".join(self.modalities),
                    dict(self.skipped) or "none")

    def _usable_frames(self, seq: MMFiSequence) -> list[int]:
        missing = [m for m in self.modalities if m not in seq.frames]
        if missing:
            raise FormatError(seq.path, f"folders for {', '.join(self.modalities)}",
                              f"no {', '.join(get_modality(m).folder for m in missing)} folder")
        if seq.gt_frames == 0:
            raise FormatError(seq.path / GROUND_TRUTH_FILE, "(frames, 17, 3) joints",
                              "a missing or empty file")
        full = set.intersection(*(set(seq.frames[m]) for m in self.modalities))
        listed = set().union(*(set(seq.frames[m]) | set(seq.empty[m]) for m in self.modalities))
        usable = sorted(i for i in full if i <= seq.gt_frames)
        self.skipped.update({"empty_or_missing_file": len(listed - full),
                             "no_ground_truth": len(full) - len(usable)})
        self.skipped += Counter()  # drops the zero counts
        return usable

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def keys(self) -> list[tuple[str, str, str, int]]:
        return [self._key(i) for i in range(len(self))]

    def _key(self, i: int) -> tuple[str, str, str, int]:
        pos, frame = self._frames[i]
        seq = self.sequences[pos]
        return (seq.env, seq.subject, seq.action, frame)

    def _joints(self, pos: int) -> np.ndarray:
        if pos not in self._gt:
            seq = self.sequences[pos]
            self._gt[pos] = read_ground_truth(seq.path / GROUND_TRUTH_FILE).astype(np.float32)
        return self._gt[pos]

    def _read_raw(self, i: int) -> dict[str, np.ndarray]:
        pos, frame = self._frames[i]
        seq = self.sequences[pos]
        root = self.index.root
        return {m: read_frame(m, frame_path(root, seq.env, seq.subject, seq.action, m, frame))
                for m in self.modalities}

    def __getitem__(self, i: int) -> FrameItem:
        if not -len(self) <= i < len(self):
            raise IndexError(f"frame {i} out of range for a dataset of {len(self)} frames")
        i %= len(self)
        if i in self._items:
            return self._items[i]
        raw = self._read_raw(i)
        pos, frame = self._frames[i]
        item: FrameItem = {m: preprocess_frames(m, [raw[m]], self.spec)[0] for m in self.modalities}
        item["joints"] = self._joints(pos)[frame - 1]
        item["action"] = self.sequences[pos].action_index
        item["key"] = self._key(i)
        if self.cache:
            self._items[i] = item
        return item

    def to_arrays(self, workers: int | None = None, chunk: int = 256) -> dict[str, np.ndarray]:
        """Everything stacked: ``{modality: (N, ...), "joints": (N, 17, 3), "action": (N,),
        "frame": (N,) 1-based, "sequence": (N,) position in .sequences}``.

        Files are read by a thread pool (decoders release the GIL) and preprocessed a chunk
        at a time with the batched path, so raw 480x640 frames never pile up in memory.
        """
        if self._arrays is not None:
            return dict(self._arrays)
        n = len(self)
        out: dict[str, np.ndarray] = {
            m: np.empty((n, *model_input_shape(m, self.spec)), np.float32) for m in self.modalities}
        workers = workers or min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for start in range(0, n, chunk):
                stop = min(start + chunk, n)
                raws = list(pool.map(self._read_raw, range(start, stop)))
                for m in self.modalities:
                    out[m][start:stop] = preprocess_frames(m, [r[m] for r in raws], self.spec)
        pos = np.array([p for p, _ in self._frames], dtype=np.int64)
        frame = np.array([f for _, f in self._frames], dtype=np.int64)
        out["joints"] = np.stack([self._joints(p)[f - 1] for p, f in self._frames]) if n else \
            np.zeros((0, 17, 3), np.float32)
        out["action"] = np.array([self.sequences[p].action_index for p in pos], dtype=np.int64)
        out["frame"], out["sequence"] = frame, pos
        if self.cache:
            self._arrays = out
        return dict(out)
