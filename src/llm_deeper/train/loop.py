"""The one training loop: TinyGPT pre-training (`tinygpt/pretrain.py`) and fine-tuning (`finetune/loop.py`) both step here.

A job builds its model, data, schedule and checkpoints; `run_steps` does what
every optimizer step does, in this order:

1. the learning rate from the job's schedule (a pure function of the step, so
   a resumed run needs no scheduler state);
2. this process's micro-batches; under DDP/FSDP gradients are reduced only on
   the last one (`gradient_sync`);
3. the loss of each micro-batch is a *sum* over what it covers (tokens, or
   labelled tokens), divided by that count over the whole step: every
   micro-batch of every process. So 2 processes × batch B update exactly as 1
   process × batch 2B, whatever the sequences' lengths (DDP and FSDP average
   gradients over processes; × world turns that average back into the sum);
4. gradient clipping at the job's norm (0: off), the optimizer step;
5. the job's callbacks with a `StepLog` (progress bar, evaluation,
   checkpoints); one that returns True halts the run after this step.

Both jobs build their optimizer with `make_optimizer` and hand back a
`TrainResult`, so the same figures have the same names.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from .distributed import DistInfo
from .schedule import set_lr


@dataclass
class StepLog:
    """What a callback sees after each optimizer step."""

    step: int  # optimizer steps done (1 after the first)
    total_steps: int  # steps the run plans
    loss: float  # mean loss per counted token of this step, all processes
    lr: float  # learning rate used for this step
    seconds: float  # wall time of this step
    tokens: int  # input tokens of this step, all processes
    tokens_per_s: float = 0.0  # filled in by the job: its throughput so far
    epoch: int = 0  # fine-tuning: 0-based epoch of this step


@dataclass
class TrainResult:
    """What a finished (or halted) run hands back: TinyGPT and fine-tuning report the same figures under the same names."""

    train_losses: list[float]  # loss of every step from step 1 (a resumed run's earlier steps included)
    eval_losses: list[tuple[int, float]]  # (step, held-out loss); step 0 is before training
    steps: int  # optimizer steps done
    seconds: float  # wall time of the training steps (evaluation and saving excluded)
    tokens_per_s: float  # input tokens per second of training, all processes
    tokens: int = 0  # input tokens trained on in this run (padding excluded), all processes
    start_step: int = 0  # steps already done when this run started (resume)
    halted: bool = False  # stopped early on purpose (fine-tuning's halt_after); --resume continues
    rank: int = 0  # this process's rank
    world: int = 1  # processes that trained together
    sharding: str = "none"  # "none" (one process), "ddp" or "fsdp"
    dtype: str = "float32"  # what the forward matmuls ran in
    param_mb: float = 0.0  # parameters this process holds (its shards under FSDP), MiB
    optimizer_mb: float = 0.0  # optimizer state this process holds (its shards under FSDP), MiB
    peak_rss_mb: float = 0.0  # peak resident memory of this process
    output: Path | None = None  # the folder written: fine-tuning's adapter or model, TinyGPT's run folder
    checkpoint: Path | None = None  # TinyGPT: the final checkpoint (main process, when an output folder is set)
    plot: Path | None = None  # the loss curve PNG
    method: str = "pretrain"  # "pretrain" (TinyGPT), "full" or "lora" (fine-tuning)
    trainable: int = 0  # trainable parameters
    total: int = 0  # all parameters
    notes: list[str] = field(default_factory=list)  # truncation counts and similar warnings
    model: Any = field(default=None, repr=False)  # TinyGPT: the trained model (unwrapped), in eval mode

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items() if k != "model"}


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def make_optimizer(parameters: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0,
                   betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, decay on matrices only (not norms, biases); fused kernels where torch has them."""
    trainable = [p for p in parameters if p.requires_grad]
    decay = [p for p in trainable if p.dim() >= 2]
    no_decay = [p for p in trainable if p.dim() < 2]
    groups = [group for group in ({"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}) if group["params"]]
    try:
        # One kernel updates every tensor (no Python loop over parameters).
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=lr, betas=betas, foreach=True)


def gradient_sync(module, info: DistInfo, last: bool):
    """Under DDP/FSDP, reduce gradients only on the last micro-batch of a step."""
    if not info.enabled or last:
        return nullcontext()
    if hasattr(module, "no_sync"):
        return module.no_sync()  # DDP
    return FsdpNoSync(module)


class FsdpNoSync:
    """FSDP2's equivalent of DDP's no_sync: keep gradients local until the last micro-batch."""

    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.module.set_requires_gradient_sync(False)

    def __exit__(self, *exc):
        self.module.set_requires_gradient_sync(True)


def run_steps(*, module, optimizer: torch.optim.Optimizer, info: DistInfo, start: int, total: int,
              schedule: Callable[[int], float], batches: Callable[[int], Sequence],
              loss_of: Callable[[Any], torch.Tensor], count_of: Callable[[Any], int], tokens_of: Callable[[Any], int],
              grad_clip: float, callbacks: Sequence[Callable[[StepLog], bool | None]] = ()) -> int:
    """Optimizer steps `start` .. `total` - 1; returns the steps done (less than `total` when a callback halted).

    `module` is what DDP/FSDP wrapped (for `no_sync`); `batches(step)` gives this process's
    micro-batches of that step; `loss_of(batch)` their summed loss over `count_of(batch)`
    positions; `tokens_of(batch)` the input tokens, for throughput.
    """
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    for step in range(start, total):
        started = time.perf_counter()
        lr = schedule(step)
        set_lr(optimizer, lr)
        micro = batches(step)
        counted = info.all_reduce_sum(sum(count_of(batch) for batch in micro))
        step_loss = 0.0
        for index, batch in enumerate(micro):
            with gradient_sync(module, info, last=index == len(micro) - 1):
                loss_sum = loss_of(batch)
                (loss_sum * info.world / max(counted, 1)).backward()
            step_loss += float(loss_sum.detach())
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        log = StepLog(step=step + 1, total_steps=total, loss=info.all_reduce_sum(step_loss) / max(counted, 1), lr=lr,
                      seconds=time.perf_counter() - started, tokens=int(info.all_reduce_sum(sum(tokens_of(batch) for batch in micro))))
        if any([callback(log) for callback in callbacks]):  # every callback sees every step, then the run halts
            return step + 1
    return total
