"""The TinyGPT training loop: AdamW, warmup + cosine, clipping, accumulation,
periodic validation, atomic checkpoints, bit-exact resume, DDP.

One function, `train`, in the order a step happens. The same code runs in one
process or under `torchrun`. The plumbing it shares with fine-tuning lives in
`distributed.py`, `precision.py`, `checkpointing.py`, `schedule.py` and
`evaluation.py`; this file keeps only what a step does.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..errors import UserError
from ..scratch.tinygpt import TinyGPT, TinyGPTConfig
from .checkpoint import check_resumable, load_checkpoint, save_checkpoint
from .checkpointing import remove_stale_temps
from .config import TrainConfig
from .distributed import DistInfo, auto_threads, cleanup, setup
from .evaluation import mean_loss
from .precision import autocast_for, resolve_dtype
from .schedule import lr_at, set_lr
from .text import TokenData, get_batch

CHECKPOINT = "checkpoint.pt"
LOSS_PLOT = "loss.png"


@dataclass
class TrainResult:
    """What a finished run hands back."""

    model: TinyGPT  # the trained model (unwrapped from DDP / compile), in eval mode
    losses: list[float]  # training loss of every step, from step 1 (resumed steps included)
    val_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, validation loss)
    tokens_per_second: float = 0.0  # training throughput of this run, all processes together
    train_seconds: float = 0.0  # wall time inside training steps (evaluation excluded)
    start_step: int = 0  # steps already done when this run started (resume)
    checkpoint: Path | None = None  # the final checkpoint (main process, when out_dir is set)
    plot: Path | None = None  # the loss curve PNG
    rank: int = 0  # this process's rank
    dtype: str = "float32"  # what the forward matmuls ran in ("bfloat16" autocast or "float32")


def make_optimizer(model: TinyGPT, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with decay on matrices only; fused kernels when torch offers them."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        # One kernel updates every tensor (no Python loop over parameters).
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), foreach=True)


def evaluate(model: TinyGPT, ids: torch.Tensor, batch: int, context: int, n_batches: int, seed: int, device: torch.device,
             autocast=contextlib.nullcontext) -> float:
    """Mean loss over `n_batches` validation batches; the same batches at every call (fixed seed)."""
    generator = torch.Generator().manual_seed(seed)

    def loss_of(_):
        x, y = get_batch(ids, batch, context, generator)
        with autocast():
            return model(x.to(device), y.to(device))[1], 1

    return mean_loss(model, range(n_batches), loss_of)


def progress_bar(total: int, start: int):
    """A rich progress bar with step, loss, tokens/s and time left."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[tps]} tok/s"),
        TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
    )
    task = progress.add_task("train", total=total, completed=start, loss="…", val="…", tps="…")
    return progress, task


def train(model_config: TinyGPTConfig, cfg: TrainConfig, data: TokenData, tokenizer, out_dir: str | Path | None = None, *,
          resume: bool = False, data_fingerprint: str = "", show_progress: bool = True, log: Callable[[str], None] = print) -> TrainResult:
    """Train a TinyGPT from scratch (or from `out_dir/checkpoint.pt` with `resume`)."""
    info = setup(cfg.device)
    threads = torch.get_num_threads()
    try:
        return _train(info, model_config, cfg, data, tokenizer, Path(out_dir) if out_dir else None, resume, data_fingerprint, show_progress, log)
    finally:
        torch.set_num_threads(threads)  # a thread setting is process-wide: leave it as found
        cleanup(info)


def _train(info: DistInfo, model_config, cfg, data, tokenizer, out_dir, resume, data_fingerprint, show_progress, log) -> TrainResult:
    device = info.device
    dtype = resolve_dtype(cfg.dtype, device)
    if out_dir is not None and info.is_main:
        remove_stale_temps(out_dir)  # temporary files of a run killed while saving
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads or auto_threads(info.world))
    torch.manual_seed(cfg.seed)  # same initial weights in every process
    model = TinyGPT(model_config).to(device)
    optimizer = make_optimizer(model, cfg, device)
    batch_rng = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    val_losses: list[tuple[int, float]] = []
    start = 0

    if resume:
        if out_dir is None or not (out_dir / CHECKPOINT).is_file():
            raise UserError(f"--resume: no checkpoint in {out_dir} to resume from; drop --resume to start a new run")
        ckpt = load_checkpoint(out_dir / CHECKPOINT)
        check_resumable(ckpt, model_config.to_dict(), cfg.to_dict(), tokenizer.to_dict(), data_fingerprint, info.world)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        batch_rng.set_state(ckpt["batch_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        losses, val_losses, start = list(ckpt["losses"]), [tuple(v) for v in ckpt["val_losses"]], int(ckpt["step"])
        if info.is_main:
            log(f"resumed from step {start} ({out_dir / CHECKPOINT})")
        if start >= cfg.steps:
            raise UserError(f"the checkpoint is already at step {start} of {cfg.steps}: pass a larger --steps to train further")

    ddp = torch.nn.parallel.DistributedDataParallel(model) if info.enabled else model
    step_model = torch.compile(ddp) if cfg.compile else ddp
    autocast = autocast_for(dtype, device)

    def checkpoint(step: int) -> Path:
        return save_checkpoint(out_dir / CHECKPOINT, {
            "step": step, "model_config": model_config.to_dict(), "train_config": cfg.to_dict(),
            "tokenizer": tokenizer.to_dict(), "data_fingerprint": data_fingerprint, "world_size": info.world,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "batch_rng": batch_rng.get_state(), "torch_rng": torch.get_rng_state(),
            "losses": losses, "val_losses": [list(v) for v in val_losses],
        })

    tokens_per_step = cfg.batch_size * cfg.grad_accum * model_config.context * info.world
    bar = progress_bar(cfg.steps, start) if show_progress and info.is_main else None
    if bar:
        bar[0].start()
    timed_seconds, timed_steps = 0.0, 0
    model.train()
    try:
        for step in range(start, cfg.steps):
            t0 = time.perf_counter()
            set_lr(optimizer, lr_at(step, cfg))
            total = torch.zeros((), device=device)
            for micro in range(cfg.grad_accum):
                x, y = get_batch(data.train, cfg.batch_size, model_config.context, batch_rng, info.rank, info.world)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                # Under DDP, all-reduce gradients only on the last micro-batch.
                sync = ddp.no_sync() if info.enabled and micro < cfg.grad_accum - 1 else contextlib.nullcontext()
                with sync:
                    with autocast():
                        _, loss = step_model(x, y)
                    (loss / cfg.grad_accum).backward()
                total += loss.detach()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(total.item() / cfg.grad_accum)
            if step > start:  # the first step pays for warm-up (and compilation): not timed
                timed_seconds += time.perf_counter() - t0
                timed_steps += 1
            done = step + 1
            if info.is_main and ((cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps):
                val_losses.append((done, evaluate(model, data.val, cfg.batch_size, model_config.context, cfg.eval_batches, cfg.seed + 1, device, autocast)))
            if bar:
                tps = f"{timed_steps * tokens_per_step / timed_seconds:,.0f}" if timed_seconds else "…"
                val = f"{val_losses[-1][1]:.3f}" if val_losses else "…"
                bar[0].update(bar[1], completed=done, loss=f"{losses[-1]:.3f}", val=val, tps=tps)
            if out_dir is not None and info.is_main and cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
                checkpoint(done)
    finally:
        if bar:
            bar[0].stop()

    result = TrainResult(model=model.eval(), losses=losses, val_losses=val_losses, start_step=start, rank=info.rank,
                         tokens_per_second=timed_steps * tokens_per_step / timed_seconds if timed_seconds else 0.0,
                         train_seconds=timed_seconds, dtype=dtype)
    if out_dir is not None and info.is_main:
        from .plot import save_loss_curve

        result.checkpoint = checkpoint(cfg.steps)
        result.plot = save_loss_curve(losses, val_losses, out_dir / LOSS_PLOT)
    return result
