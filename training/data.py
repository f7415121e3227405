"""Run data: the MM-Fi folder read once into in-memory tensors for train / meta-val / val.

``val`` is the evaluation split (``split.kind``); ``meta`` is held out of training for
the purified weights θ and is never the evaluation split. When the sequence split leaves
no meta-validation sequences (tiny folders), a seeded fraction of training frames is
held out instead, with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rigserve.sensors.dataset import MMFiDataset, MMFiIndex, split_sequences
from rigserve.sensors.preprocess import PreprocessSpec, model_input_shape
from rigserve.sensors.specs import SENSOR_MODALITIES

from .checkpoint import preprocess_spec
from .config import TrainConfig

log = logging.getLogger(__name__)


class DataError(ValueError):
    """The data folder cannot serve the requested run."""


@dataclass
class ArraySet:
    """Model-ready tensors: ``inputs`` modality → (N, ...), ``joints`` (N, 17, 3),
    ``action`` (N,)."""

    inputs: dict[str, torch.Tensor]
    joints: torch.Tensor
    action: torch.Tensor

    def __len__(self) -> int:
        return int(self.joints.shape[0])

    def take(self, idx: torch.Tensor) -> ArraySet:
        return ArraySet({m: x[idx] for m, x in self.inputs.items()}, self.joints[idx],
                        self.action[idx])

    def only(self, modalities: tuple[str, ...]) -> ArraySet:
        return ArraySet({m: self.inputs[m] for m in modalities}, self.joints, self.action)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], modalities: tuple[str, ...]) -> ArraySet:
        return cls({m: torch.from_numpy(np.ascontiguousarray(arrays[m])) for m in modalities},
                   torch.from_numpy(np.asarray(arrays["joints"], np.float32)),
                   torch.from_numpy(np.asarray(arrays["action"], np.int64)))


@dataclass
class RunData:
    modalities: tuple[str, ...]
    spec: PreprocessSpec
    input_shapes: dict[str, tuple[int, ...]]
    train: ArraySet
    meta: ArraySet
    val: ArraySet
    split: dict[str, Any]

    def only(self, modalities: tuple[str, ...]) -> RunData:
        return RunData(modalities, self.spec, {m: self.input_shapes[m] for m in modalities},
                       self.train.only(modalities), self.meta.only(modalities),
                       self.val.only(modalities), self.split)


def choose_modalities(requested: tuple[str, ...], available: tuple[str, ...]) -> tuple[str, ...]:
    usable = tuple(m for m in available if m in SENSOR_MODALITIES)
    if not requested:
        if not usable:
            raise DataError(f"no sensor modality in the data folder (found {list(available)}); "
                            f"accepted: {list(SENSOR_MODALITIES)}")
        return tuple(sorted(usable))
    missing = [m for m in requested if m not in usable]
    if missing:
        raise DataError(f"modalities {missing} requested but the data folder has only "
                        f"{list(usable)}")
    return tuple(sorted(requested))


_CACHE: dict[tuple[Any, ...], RunData] = {}


def load_data(cfg: TrainConfig) -> RunData:
    """Read ``cfg.data`` (cached per process: the benchmark trains many runs on one folder)."""
    key = (cfg.data, cfg.modalities, cfg.seed, repr(cfg.split),
           repr(sorted(cfg.preprocess.items())))
    if key not in _CACHE:
        _CACHE[key] = _load(cfg)
    return _CACHE[key]


def _load(cfg: TrainConfig) -> RunData:
    index = MMFiIndex.scan(cfg.data)
    mods = choose_modalities(tuple(cfg.modalities), index.modalities)
    spec = preprocess_spec(cfg)
    s = cfg.split
    split = split_sequences(index, s.kind, s.protocol, seed=cfg.seed, val_ratio=s.val_ratio,
                            meta_val_ratio=s.meta_ratio)

    def arrays(seqs: tuple[Any, ...]) -> ArraySet:
        return ArraySet.from_arrays(MMFiDataset(index, seqs, mods, spec).to_arrays(), mods)

    train, val = arrays(split.train), arrays(split.val)
    split_dict = split.to_dict()
    if split.meta_val:
        meta = arrays(split.meta_val)
    else:
        train, meta = _hold_out_frames(train, s.meta_ratio, cfg.seed)
        split_dict["meta_val_frames"] = len(meta)
        log.warning("no meta-validation sequences; held out %d training frames for θ", len(meta))
    if len(train) == 0 or len(val) == 0 or len(meta) == 0:
        raise DataError(f"{cfg.data}: split leaves train={len(train)}, meta={len(meta)}, "
                        f"val={len(val)} frames; every part needs at least one")
    shapes = {m: model_input_shape(m, spec) for m in mods}
    log.info("data: %s, train %d / meta %d / val %d frames", "+".join(mods), len(train),
             len(meta), len(val))
    return RunData(mods, spec, shapes, train, meta, val, split_dict)


def _hold_out_frames(data: ArraySet, ratio: float, seed: int) -> tuple[ArraySet, ArraySet]:
    n = len(data)
    k = max(1, round(n * (ratio or 0.2)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))
    return data.take(perm[k:].sort().values), data.take(perm[:k].sort().values)
