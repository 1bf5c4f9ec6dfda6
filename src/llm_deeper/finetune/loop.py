"""The training loop behind `llm-deeper finetune` (full or LoRA, one process, DDP or FSDP).

One loop for both methods: the only difference is which parameters have
`requires_grad`. Under `torchrun` each process takes its own slice of every
global batch and DDP averages the gradients; the loss is divided by the number
of labelled tokens in the *whole* optimizer step (all micro-batches, all
processes), so 2 processes × batch B give the same update as 1 process ×
batch 2B, whatever the conversations' lengths.

The plumbing is shared with TinyGPT's loop (`llm_deeper.train`): process
group and device (`distributed`), schedule, evaluation and the checksummed,
atomic checkpoint manager; what stays here is what a fine-tuning step does.
"""

from __future__ import annotations

import json
import resource
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import UserError
from . import checkpoint
from .checkpoint import Progress
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
    world: int = 1  # processes that trained together
    sharding: str = "none"  # "none" (one process), "ddp" or "fsdp"
    param_mb: float = 0.0  # parameters this process holds (its shards under FSDP), MiB
    optimizer_mb: float = 0.0  # Adam state this process holds (its shards under FSDP), MiB
    notes: list[str] = field(default_factory=list)  # truncation counts and similar warnings

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


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
    from ..data.sft_render import collate
    from ..train.evaluation import mean_loss

    def loss_of(start: int):
        batch = {k: v.to(device) for k, v in collate(rows[start:start + batch_size], pad_id(tokenizer)).items()}
        return loss_module(**batch)

    return mean_loss(loss_module, range(0, len(rows), batch_size), loss_of)


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def train(config: FinetuneConfig, on_log: Callable[[StepLog], None] | None = None, on_note: Callable[[str], None] | None = None) -> TrainResult:
    """Fine-tune as `config` says; write the adapter/model to config.output; return the figures."""
    import torch

    from ..data.sft_render import collate
    from ..train.distributed import cleanup, setup
    from ..train.schedule import set_lr, warmup_linear
    from .modeling import build_trainable, make_token_loss, parameter_counts
    from .sharding import full_trainable_state, load_trainable_state, wrap_for_training

    config.validate()
    info = setup("auto")
    device = info.device
    notes: list[str] = []
    if info.is_main:
        checkpoint.manager(config.output).clean_stale()  # temporary files of a run killed while saving
    if config.resume and checkpoint.latest(config.output) is None:
        raise UserError(f"--resume: no checkpoint in {config.output} (checkpoints are written at each epoch end and every --save-every steps)")
    resumed = checkpoint.load(checkpoint.latest(config.output)) if config.resume else None  # a bad checkpoint fails before the model loads
    model, tokenizer = build_trainable(config, info.local_rank)
    rows = tokenize(config.data, tokenizer, config, notes)
    eval_rows = tokenize(config.eval_data, tokenizer, config, notes) if config.eval_data else []
    for note in notes:
        if on_note and info.is_main:
            on_note(note)

    per_micro = config.batch_size * info.world  # conversations per micro-batch, all processes
    per_step = per_micro * config.grad_accum
    steps_per_epoch = len(rows) // per_step  # a tail shorter than one step is left out (reshuffled each epoch)
    if steps_per_epoch == 0:
        raise UserError(f"{config.data} gives {len(rows)} training rows, fewer than one step needs ({config.batch_size} × {config.grad_accum} accumulation × {info.world} processes); lower --batch-size/--grad-accum or add data")
    total_steps = steps_per_epoch * config.epochs if config.max_steps is None else min(config.max_steps, steps_per_epoch * config.epochs)

    loss_module = make_token_loss(model)
    train_module = wrap_for_training(loss_module, info, config.sharding)
    # Every process evaluates (equal results): under FSDP each forward is a collective; under DDP the local replica is enough.
    eval_module = train_module if info.enabled and config.sharding == "fsdp" else loss_module
    trainable = [p for p in loss_module.parameters() if p.requires_grad]  # after sharding: FSDP replaces them with shards
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)

    progress = Progress()
    torch.manual_seed(config.seed + info.rank)  # dropout masks: reproducible, different per process
    if resumed is not None:
        load_trainable_state(loss_module, optimizer, resumed["model"], resumed["optimizer"], info, config.sharding)
        torch.set_rng_state(resumed["rng"])
        progress = resumed["progress"]
        if on_note and info.is_main:
            on_note(f"resumed from step {progress.step} of {total_steps}")
    elif eval_rows:
        progress.eval_losses.append(evaluate(eval_module, eval_rows, tokenizer, config.batch_size, device))

    def save_checkpoint() -> None:
        weights, optimizer_state = full_trainable_state(loss_module, optimizer, info, config.sharding)  # a collective under FSDP
        if info.is_main:
            checkpoint.save(config.output, progress, weights, optimizer_state, torch.get_rng_state())
        info.barrier()

    loss_module.train()
    halted = False
    started = time.perf_counter() - progress.seconds
    while progress.epoch < config.epochs and progress.step < total_steps and not halted:
        order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(config.seed * 1000 + progress.epoch)).tolist()
        while progress.batch_in_epoch < steps_per_epoch and progress.step < total_steps:
            first = progress.batch_in_epoch * per_step
            micro = []
            for a in range(config.grad_accum):
                chunk = order[first + a * per_micro: first + (a + 1) * per_micro]
                mine = chunk[info.rank * config.batch_size:(info.rank + 1) * config.batch_size]
                micro.append({k: v.to(device) for k, v in collate([rows[i] for i in mine], pad_id(tokenizer)).items()})
            labelled = info.all_reduce_sum(sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro))
            lr = warmup_linear(progress.step, config.learning_rate, config.warmup_steps, total_steps)
            set_lr(optimizer, lr)
            step_loss = 0.0
            for a, batch in enumerate(micro):
                with gradient_sync(train_module, info, last=a == len(micro) - 1):
                    loss_sum, _ = train_module(**batch)
                    # DDP and FSDP average gradients over processes; × world turns that into a sum,
                    # so the step's gradient is the mean over every labelled token of the step.
                    (loss_sum * info.world / max(labelled, 1)).backward()
                step_loss += float(loss_sum.detach())
                progress.tokens += int(info.all_reduce_sum(int(batch["attention_mask"].sum())))
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            progress.step += 1
            progress.batch_in_epoch += 1
            progress.seconds = time.perf_counter() - started
            loss = info.all_reduce_sum(step_loss) / max(labelled, 1)
            progress.train_losses.append(loss)
            if on_log and info.is_main:
                on_log(StepLog(progress.step, total_steps, progress.epoch, loss, lr, progress.tokens / max(progress.seconds, 1e-9)))
            if config.save_every and progress.step % config.save_every == 0:
                save_checkpoint()
            if config.halt_after is not None and progress.step >= config.halt_after:
                halted = True
                break
        if halted:
            save_checkpoint()
            break
        progress.epoch += 1
        progress.batch_in_epoch = 0
        if eval_rows:
            progress.eval_losses.append(evaluate(eval_module, eval_rows, tokenizer, config.batch_size, device))
        save_checkpoint()
        started = time.perf_counter() - progress.seconds  # eval and saving are not training time

    counts = parameter_counts(model)
    from .sharding import local_mb

    result = TrainResult(
        output=config.output, method=config.method, steps=progress.step, train_losses=progress.train_losses,
        eval_losses=progress.eval_losses, seconds=progress.seconds, tokens_per_s=progress.tokens / max(progress.seconds, 1e-9),
        trainable=counts[0], total=counts[1], peak_rss_mb=peak_rss_mb(), halted=halted, notes=notes,
        world=info.world, sharding=config.sharding if info.enabled else "none",
        param_mb=local_mb(loss_module.parameters()),
        optimizer_mb=local_mb(v for state in optimizer.state.values() for v in state.values()),
    )
    if not halted:
        weights, _ = full_trainable_state(loss_module, None, info, config.sharding, everything=config.method == "full")
        if info.is_main:
            save_output(model, tokenizer, config, result, weights)
            checkpoint.manager(config.output).clear()  # the run finished: its output replaces them
    info.barrier()
    cleanup(info)
    return result


def gradient_sync(module, info, last: bool):
    """Under DDP/FSDP, reduce gradients only on the last micro-batch of a step."""
    if not info.enabled or last:
        return nullcontext()
    if hasattr(module, "no_sync"):
        return module.no_sync()  # DDP
    return _fsdp_no_sync(module)


class _fsdp_no_sync:
    """FSDP2's equivalent of DDP's no_sync: keep gradients local until the last micro-batch."""

    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.module.set_requires_gradient_sync(False)

    def __exit__(self, *exc):
        self.module.set_requires_gradient_sync(True)


def save_output(model, tokenizer, config: FinetuneConfig, result: TrainResult, weights: dict) -> None:
    """LoRA: a standard PEFT adapter folder; full: a standalone HF model folder. Plus the run's figures.

    `weights` are the unsharded trainable (full: all) weights named as in TokenLoss ("model." + name).
    """
    from ..models.embedded import write_portable_config

    config.output.mkdir(parents=True, exist_ok=True)
    if result.sharding == "fsdp":  # the model's own parameters are shards: save the gathered copy
        state = {name.removeprefix("model."): value for name, value in weights.items()}
        model.save_pretrained(config.output, safe_serialization=True, state_dict=state)
    else:
        model.save_pretrained(config.output, safe_serialization=True)
    tokenizer.save_pretrained(config.output)
    if config.method == "full":
        write_portable_config(config.output)
    (config.output / "finetune_config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n", encoding="utf-8")
    (config.output / "train_result.json").write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
