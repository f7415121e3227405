"""MM-Fi train/val splits over sequences, with a meta-validation part carved out of train.

Protocols select actions (P1 daily, P2 rehabilitation, P3 all); splits decide which
sequences validate (MM-Fi paper and official loader):

- ``random``: per action, that action's subjects are shuffled with the seed and
  ``val_ratio`` of them validate (32 train / 8 val of MM-Fi's 40 at the default 0.2);
- ``cross_subject``: S05, S10, ..., S40 validate;
- ``cross_environment``: E01-E03 train, E04 validates.

``meta_val_ratio`` holds out part of *train* (per action, by subject, never touching val)
for the teacher's meta-learned modality weights.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rigserve.registry import Registry

from .index import MMFiIndex, MMFiSequence
from .specs import ACTION_CODES, PROTOCOLS

logger = logging.getLogger(__name__)

#: Decides, for the sequences of one protocol, which validate: (seqs, seed, ratio) -> val.
SplitRule = Callable[[list[MMFiSequence], int, float], set[MMFiSequence]]

#: Split kinds by name; a lookup of an unknown kind is a ValueError listing the registered ones.
SPLITS: Registry[str, SplitRule] = Registry("split", error=ValueError)

CROSS_SUBJECT_VAL: tuple[str, ...] = tuple(f"S{i:02d}" for i in range(5, 41, 5))
CROSS_ENVIRONMENT_VAL: tuple[str, ...] = ("E04",)


def _held_out_count(n: int, ratio: float) -> int:
    """round(n * ratio), but at least one held out and one kept when n >= 2."""
    if ratio <= 0 or n < 2:
        return 0
    return min(max(int(n * ratio + 0.5), 1), n - 1)


def hold_out_subjects_per_action(seqs: Iterable[MMFiSequence], ratio: float, seed: int,
                                 stream: int = 0) -> set[MMFiSequence]:
    """Per action, shuffle its subjects with the seed and hold out ``ratio`` of them.

    Each action draws from its own generator (seed, stream, action), so a protocol that
    drops some actions leaves the others' draws unchanged.
    """
    by_action: dict[str, list[MMFiSequence]] = {}
    for s in seqs:
        by_action.setdefault(s.action, []).append(s)
    held: set[MMFiSequence] = set()
    for action, group in sorted(by_action.items()):
        subjects = sorted({s.subject for s in group})
        rng = np.random.default_rng([seed, stream, ACTION_CODES.index(action)])
        chosen = set(rng.permutation(subjects)[:_held_out_count(len(subjects), ratio)])
        held |= {s for s in group if s.subject in chosen}
    return held


@SPLITS.register("random")
def _random(seqs: list[MMFiSequence], seed: int, ratio: float) -> set[MMFiSequence]:
    return hold_out_subjects_per_action(seqs, ratio, seed)


@SPLITS.register("cross_subject")
def _cross_subject(seqs: list[MMFiSequence], _seed: int, _ratio: float) -> set[MMFiSequence]:
    return {s for s in seqs if s.subject in CROSS_SUBJECT_VAL}


@SPLITS.register("cross_environment")
def _cross_environment(seqs: list[MMFiSequence], _seed: int,
                       _ratio: float) -> set[MMFiSequence]:
    return {s for s in seqs if s.env in CROSS_ENVIRONMENT_VAL}


@dataclass(frozen=True)
class Split:
    """Sequences for training, validation and meta-validation (held out of train)."""

    train: tuple[MMFiSequence, ...]
    val: tuple[MMFiSequence, ...]
    meta_val: tuple[MMFiSequence, ...] = ()
    params: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``split.json``): the parameters and the sequence keys of each part."""
        return {**(self.params or {}), "train": [s.key for s in self.train],
                "val": [s.key for s in self.val], "meta_val": [s.key for s in self.meta_val]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], index: MMFiIndex) -> Split:
        parts = {p: tuple(index[k] for k in data.get(p, ())) for p in ("train", "val", "meta_val")}
        params = {k: v for k, v in data.items() if k not in parts}
        return cls(parts["train"], parts["val"], parts["meta_val"], params)


def _describe(seqs: Iterable[MMFiSequence]) -> str:
    seqs = list(seqs)
    envs = sorted({s.env for s in seqs})
    subjects = sorted({s.subject for s in seqs})
    return f"{len(seqs)} sequences, environments {envs}, subjects {subjects}"


def split_sequences(index: MMFiIndex | Iterable[MMFiSequence], split: str = "random",
                    protocol: str = "p3", *, seed: int = 0, val_ratio: float = 0.2,
                    meta_val_ratio: float = 0.0) -> Split:
    """Split the sequences of ``protocol`` into train / val (/ meta_val, carved from train)."""
    rule = SPLITS[split]
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; accepted: {', '.join(PROTOCOLS)}")
    for name, ratio in (("val_ratio", val_ratio), ("meta_val_ratio", meta_val_ratio)):
        if not 0 <= ratio < 1:
            raise ValueError(f"{name} must be in [0, 1), got {ratio}")
    actions = set(PROTOCOLS[protocol])
    seqs = [s for s in index if s.action in actions]
    val = rule(seqs, seed, val_ratio)
    train = [s for s in seqs if s not in val]
    if not train or not val:
        empty = "train" if not train else "val"
        raise ValueError(f"split {split!r} (protocol {protocol}) leaves {empty} empty over "
                         f"{_describe(seqs)}")
    meta = hold_out_subjects_per_action(train, meta_val_ratio, seed, stream=1)
    if meta_val_ratio > 0 and not meta:
        logger.warning("meta_val_ratio=%s held nothing out: every action has < 2 train "
                       "subjects", meta_val_ratio)
    params = {"split": split, "protocol": protocol, "seed": seed, "val_ratio": val_ratio,
              "meta_val_ratio": meta_val_ratio}
    return Split(train=tuple(s for s in train if s not in meta),
                 val=tuple(s for s in seqs if s in val),
                 meta_val=tuple(s for s in train if s in meta), params=params)
