"""Data parallelism under ``torchrun`` (gloo on CPU, NCCL on GPUs).

Every rank holds the full model, takes its shard of each global batch and averages
gradients with one all-reduce per step — DDP's semantics. The explicit all-reduce
replaces the ``DistributedDataParallel`` wrapper because the look-ahead meta step
differentiates through the inner gradient with ``functional_call``, which the wrapper's
backward hooks do not support.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_from_env() -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size())


def average_gradients(params: list[torch.Tensor], info: DistInfo) -> None:
    if info.world == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= info.world


def average_tensor(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.world > 1:
        dist.all_reduce(t)
        t /= info.world
    return t


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        dist.barrier()
