"""The training loop behind `llm-deeper finetune` (full or LoRA, one process or DDP).

One loop for both methods: the only difference is which parameters have
`requires_grad`. Under `torchrun` each process takes its own slice of every
global batch and DDP averages the gradients; the loss is divided by the number
of labelled tokens in the *whole* optimizer step (all micro-batches, all
processes), so 2 processes × batch B give the same update as 1 process ×
batch 2B, whatever the conversations' lengths.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import UserError
from . import checkpoint
from .config import FinetuneConfig


@dataclass
class StepLog:
    """What the progress bar shows after each optimizer step."""

    step: int  # optimizer steps done
    total_steps: int  # steps the run plans
    epoch: int  # 0-based epoch of this step
    loss: float  # mean loss per labelled token in this step
    lr: float  # learning rate used for this step
    tokens_per_s: float  # input tokens (all processes) per second so far


@dataclass
class TrainResult:
    """What a run did."""

    output: Path  # the adapter or model folder
    method: str  # "full" or "lora"
    steps: int  # optimizer steps done
    train_losses: list[float]  # loss of each step
    eval_losses: list[float]  # held-out loss before training, then after each epoch
    seconds: float  # wall time of the training steps (loading and eval excluded)
    tokens_per_s: float  # input tokens per second of training, all processes
    trainable: int  # trainable parameters
    total: int  # all parameters
    peak_rss_mb: float  # peak resident memory of this process
    halted: bool = False  # stopped by halt_after (resume with --resume)
    notes: list[str] = field(default_factory=list)  # truncation counts and similar warnings

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def distributed_setup() -> tuple[int, int, int]:
    """(rank, world size, local rank); starts a process group under torchrun."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def all_reduce_sum(value: float, world: int) -> float:
    if world == 1:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item())


def tokenize(path: Path, tokenizer, config: FinetuneConfig, notes: list[str]):
    from ..data.sft import read_jsonl
    from ..data.sft_render import tokenize_dataset

    rows, stats = tokenize_dataset(tokenizer, read_jsonl(path), config.max_length, pack=config.pack)
    if stats.truncated:
        notes.append(f"{path.name}: {stats.truncated} of {stats.examples} conversations cut to --max-length {config.max_length}")
    if stats.dropped:
        notes.append(f"{path.name}: {stats.dropped} conversations dropped (no assistant token left within --max-length)")
    return rows


def evaluate(loss_module, rows, tokenizer, batch_size: int, device) -> float:
    """Mean loss per labelled token over a data set."""
    import torch

    from ..data.sft_render import collate

    total, count = 0.0, 0
    loss_module.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = {k: v.to(device) for k, v in collate(rows[start:start + batch_size], pad_id(tokenizer)).items()}
            loss, n = loss_module(**batch)
            total, count = total + float(loss), count + int(n)
    loss_module.train()
    return total / max(count, 1)


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def schedule(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warm-up to the peak, then linear decay to zero at the last step."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


def train(config: FinetuneConfig, on_log: Callable[[StepLog], None] | None = None, on_note: Callable[[str], None] | None = None) -> TrainResult:
    """Fine-tune as `config` says; write the adapter/model to config.output; return the figures."""
    import torch

    from ..data.sft_render import collate
    from .modeling import build_trainable, device_for, make_token_loss, parameter_counts

    config.validate()
    rank, world, local_rank = distributed_setup()
    device = device_for(local_rank)
    notes: list[str] = []
    if config.resume and checkpoint.latest(config.output) is None:
        raise UserError(f"--resume: no checkpoint in {config.output} (checkpoints are written at each epoch end and every --save-every steps)")
    model, tokenizer = build_trainable(config, local_rank)
    rows = tokenize(config.data, tokenizer, config, notes)
    eval_rows = tokenize(config.eval_data, tokenizer, config, notes) if config.eval_data else []
    for note in notes:
        if on_note and rank == 0:
            on_note(note)

    per_micro = config.batch_size * world  # conversations per micro-batch, all processes
    per_step = per_micro * config.grad_accum
    steps_per_epoch = len(rows) // per_step  # a tail shorter than one step is left out (reshuffled each epoch)
    if steps_per_epoch == 0:
        raise UserError(f"{config.data} gives {len(rows)} training rows, fewer than one step needs ({config.batch_size} × {config.grad_accum} accumulation × {world} processes); lower --batch-size/--grad-accum or add data")
    total_steps = steps_per_epoch * config.epochs if config.max_steps is None else min(config.max_steps, steps_per_epoch * config.epochs)

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(config.warmup_steps, total_steps))
    loss_module = make_token_loss(model)
    train_module = loss_module
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_module = DistributedDataParallel(loss_module, device_ids=[local_rank] if device.type == "cuda" else None)

    progress = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "train_losses": [], "eval_losses": [], "seconds": 0.0, "tokens": 0}
    torch.manual_seed(config.seed + rank)  # dropout masks: reproducible, different per process
    if config.resume:
        progress = checkpoint.load(checkpoint.latest(config.output), model, optimizer, scheduler)
        if on_note and rank == 0:
            on_note(f"resumed from step {progress['step']} of {total_steps}")
    elif eval_rows:
        progress["eval_losses"].append(evaluate(loss_module, eval_rows, tokenizer, config.batch_size, device) if rank == 0 else 0.0)

    def save_checkpoint() -> None:
        if rank == 0:
            checkpoint.save(config.output, progress["step"], model, optimizer, scheduler, progress)
        if world > 1:
            torch.distributed.barrier()

    model.train()
    halted = False
    started = time.perf_counter() - progress["seconds"]
    while progress["epoch"] < config.epochs and progress["step"] < total_steps and not halted:
        order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(config.seed * 1000 + progress["epoch"])).tolist()
        while progress["batch_in_epoch"] < steps_per_epoch and progress["step"] < total_steps:
            first = progress["batch_in_epoch"] * per_step
            micro = []
            for a in range(config.grad_accum):
                chunk = order[first + a * per_micro: first + (a + 1) * per_micro]
                mine = chunk[rank * config.batch_size:(rank + 1) * config.batch_size]
                micro.append({k: v.to(device) for k, v in collate([rows[i] for i in mine], pad_id(tokenizer)).items()})
            labelled = all_reduce_sum(sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro), world)
            step_loss = 0.0
            for a, batch in enumerate(micro):
                sync = train_module.no_sync() if world > 1 and a < len(micro) - 1 else nullcontext()
                with sync:
                    loss_sum, _ = train_module(**batch)
                    # DDP averages gradients over processes; × world turns that into a sum,
                    # so the step's gradient is the mean over every labelled token of the step.
                    (loss_sum * world / max(labelled, 1)).backward()
                step_loss += float(loss_sum.detach())
                progress["tokens"] += int(all_reduce_sum(int(batch["attention_mask"].sum()), world)) if world > 1 else int(batch["attention_mask"].sum())
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress["step"] += 1
            progress["batch_in_epoch"] += 1
            progress["seconds"] = time.perf_counter() - started
            loss = all_reduce_sum(step_loss, world) / max(labelled, 1)
            progress["train_losses"].append(loss)
            if on_log and rank == 0:
                on_log(StepLog(progress["step"], total_steps, progress["epoch"], loss, lr, progress["tokens"] / max(progress["seconds"], 1e-9)))
            if config.save_every and progress["step"] % config.save_every == 0:
                save_checkpoint()
            if config.halt_after is not None and progress["step"] >= config.halt_after:
                halted = True
                break
        if halted:
            save_checkpoint()
            break
        progress["epoch"] += 1
        progress["batch_in_epoch"] = 0
        if eval_rows:
            progress["eval_losses"].append(evaluate(loss_module, eval_rows, tokenizer, config.batch_size, device) if rank == 0 else 0.0)
        save_checkpoint()
        started = time.perf_counter() - progress["seconds"]  # eval and saving are not training time

    counts = parameter_counts(model)
    result = TrainResult(
        output=config.output, method=config.method, steps=progress["step"], train_losses=progress["train_losses"],
        eval_losses=progress["eval_losses"], seconds=progress["seconds"], tokens_per_s=progress["tokens"] / max(progress["seconds"], 1e-9),
        trainable=counts[0], total=counts[1], peak_rss_mb=peak_rss_mb(), halted=halted, notes=notes,
    )
    if rank == 0 and not halted:
        save_output(model, tokenizer, config, result)
        for folder in checkpoint.checkpoints(config.output):  # the run finished: its output replaces them
            shutil.rmtree(folder, ignore_errors=True)
    if world > 1:
        torch.distributed.barrier()
    return result


def save_output(model, tokenizer, config: FinetuneConfig, result: TrainResult) -> None:
    """LoRA: a standard PEFT adapter folder; full: a standalone HF model folder. Plus the run's figures."""
    from ..models.embedded import write_portable_config

    config.output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(config.output, safe_serialization=True)
    tokenizer.save_pretrained(config.output)
    if config.method == "full":
        write_portable_config(config.output)
    (config.output / "finetune_config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n", encoding="utf-8")
    (config.output / "train_result.json").write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
