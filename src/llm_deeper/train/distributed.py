"""Data-parallel (and sharded) training with torch's own stack: `torchrun` + DDP / FSDP.

`torchrun --nproc_per_node N -m llm_deeper tinygpt train ...` (or `... finetune ...`)
starts N processes with RANK / WORLD_SIZE / LOCAL_RANK set. Each trains on its
slice of every global batch; DDP averages the gradients (all-reduce) during
backward, FSDP also shards weights and optimizer state. The backend is gloo
on CPU and NCCL on CUDA. TinyGPT's loop and fine-tuning both start here.
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
    local_rank: int  # index on this machine (which GPU)
    device: torch.device  # this process's device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def all_reduce_sum(self, value: float) -> float:
        """Sum a Python number over every process (float64: exact for token counts)."""
        if not self.enabled:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item())


def auto_threads(world: int = 1) -> int:
    """Threads for this process: the cores that are idle now, shared among the processes.

    On a busy machine, more threads than free cores make every step wait for
    the slowest thread (5-10× slower, measured on 2 shared cores), so count
    the idle ones rather than all of them. "Now" is the kernel's count of
    runnable tasks, not the 1-minute load average: that average lags, so right
    after another job ends it still reads busy and gave 1 thread on an idle machine.
    """
    cores = os.cpu_count() or 1
    busy = busy_cores()
    idle = cores if busy is None else cores - busy
    return max(1, min(torch.get_num_threads(), int(idle + 0.5) // world))


def busy_cores(samples: int = 5, gap_s: float = 0.01) -> float | None:
    """Other tasks running right now: the median of a few reads of /proc/loadavg's runnable count,
    less this process's own reading thread; the 1-minute load average where /proc is missing; None on Windows."""
    import statistics
    import time

    try:
        counts = []
        for _ in range(samples):
            with open("/proc/loadavg") as handle:
                counts.append(int(handle.read().split()[3].split("/")[0]) - 1)
            time.sleep(gap_s)
        return statistics.median(counts)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """"auto" → this process's CUDA GPU when there is one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            from ..errors import UserError

            raise UserError("--device cuda asked for, but torch sees no CUDA GPU: use --device cpu")
        return torch.device("cuda", local_rank)
    if name != "cpu":
        from ..errors import UserError

        raise UserError(f"unknown device {name!r}: use auto, cpu or cuda")
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
    return DistInfo(rank=rank, world=world, local_rank=local_rank, device=dev)


def cleanup(info: DistInfo) -> None:
    if info.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
