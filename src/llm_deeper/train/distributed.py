"""Data-parallel training with torch's own stack: `torchrun` + DDP.

`torchrun --nproc_per_node N -m llm_deeper tinygpt train ...` starts N
processes with RANK / WORLD_SIZE / LOCAL_RANK set. Each holds a full model,
trains on its slice of every global batch, and DDP averages the gradients
(all-reduce) during backward, so every replica takes the same step. The
backend is gloo on CPU and NCCL on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class DistInfo:
    """Where this process sits in the job."""

    rank: int  # 0 .. world - 1; rank 0 logs, evaluates and writes checkpoints
    world: int  # number of processes
    device: torch.device  # this process's device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def auto_threads(world: int = 1) -> int:
    """Threads for this process: the cores that are idle now, shared among the processes.

    On a busy machine, more threads than free cores make every step wait for
    the slowest thread (5-10× slower, measured on 2 shared cores), so count
    the idle ones (1-minute load average) rather than all of them.
    """
    cores = os.cpu_count() or 1
    try:
        idle = cores - os.getloadavg()[0]
    except (OSError, AttributeError):  # no load average (Windows)
        idle = cores
    return max(1, min(torch.get_num_threads(), int(idle + 0.5) // world))


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            from ..errors import UserError

            raise UserError("--device cuda asked for, but torch sees no CUDA GPU: use --device cpu")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun; a no-op for one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world > 1 and not torch.distributed.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch.distributed.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world=world, device=dev)


def cleanup(info: DistInfo) -> None:
    if info.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
