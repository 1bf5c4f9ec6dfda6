"""TinyGPT pre-training on the shared loop: random windows of a token stream, warmup + cosine, bit-exact resume.

The steps run in `train.loop.run_steps` (the loop fine-tuning runs too: the
same optimizer construction, clipping, gradient accumulation and DDP/FSDP
gradient sync). What stays here is what pre-training decides: the model
(`scratch/tinygpt.py`), batches drawn by a seeded generator (its state is in
the checkpoint, so a resumed run draws the batches an uninterrupted one
would), periodic validation, one `checkpoint.pt`, the progress bar and the
loss plot. The same code runs in one process or under `torchrun`
(`TrainConfig.sharding`: DDP replicas or FSDP shards).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import torch

from ...errors import UserError
from ...scratch.tinygpt import TinyGPT, TinyGPTConfig
from ..checkpointing import remove_stale_temps
from ..distributed import DistInfo, auto_threads, cleanup, setup
from ..evaluation import mean_loss
from ..loop import StepLog, TrainResult, make_optimizer, run_steps
from ..precision import autocast_for, resolve_dtype
from ..schedule import lr_at
from ..sharding import full_state, load_optimizer_state, wrap_for_training
from .checkpoint import check_resumable, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .text import TokenData, get_batch

CHECKPOINT = "checkpoint.pt"
LOSS_PLOT = "loss.png"


def tinygpt_optimizer(model: TinyGPT, cfg: TrainConfig) -> torch.optim.AdamW:
    """The shared AdamW (fused, decay on matrices only) with TinyGPT's settings."""
    return make_optimizer(model.parameters(), cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2))


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
    batch_rng = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    val_losses: list[tuple[int, float]] = []
    start = 0
    ckpt = None
    if resume:
        if out_dir is None or not (out_dir / CHECKPOINT).is_file():
            raise UserError(f"--resume: no checkpoint in {out_dir} to resume from; drop --resume to start a new run")
        ckpt = load_checkpoint(out_dir / CHECKPOINT)
        check_resumable(ckpt, model_config.to_dict(), cfg.to_dict(), tokenizer.to_dict(), data_fingerprint, info.world)
        model.load_state_dict(ckpt["model"])
        batch_rng.set_state(ckpt["batch_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        losses, val_losses, start = list(ckpt["losses"]), [tuple(v) for v in ckpt["val_losses"]], int(ckpt["step"])
        if info.is_main:
            log(f"resumed from step {start} ({out_dir / CHECKPOINT})")
        if start >= cfg.steps:
            raise UserError(f"the checkpoint is already at step {start} of {cfg.steps}: pass a larger --steps to train further")

    wrapped = wrap_for_training(model, info, cfg.sharding, model.layers)
    optimizer = tinygpt_optimizer(model, cfg)  # after sharding: FSDP replaces the parameters with shards
    if ckpt is not None:
        load_optimizer_state(model, optimizer, ckpt["optimizer"], info, cfg.sharding)
    step_model = torch.compile(wrapped) if cfg.compile else wrapped
    autocast = autocast_for(dtype, device)
    fsdp = info.enabled and cfg.sharding == "fsdp"  # then every forward is a collective: every process evaluates and saves

    def checkpoint(step: int) -> Path | None:
        weights, optimizer_state = full_state(model, optimizer, info, cfg.sharding)
        if not info.is_main:
            return None
        return save_checkpoint(out_dir / CHECKPOINT, {
            "step": step, "model_config": model_config.to_dict(), "train_config": cfg.to_dict(),
            "tokenizer": tokenizer.to_dict(), "data_fingerprint": data_fingerprint, "world_size": info.world,
            "model": weights, "optimizer": optimizer_state,
            "batch_rng": batch_rng.get_state(), "torch_rng": torch.get_rng_state(),
            "losses": losses, "val_losses": [list(v) for v in val_losses],
        })

    def batches(step: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        micro = []
        for _ in range(cfg.grad_accum):
            x, y = get_batch(data.train, cfg.batch_size, model_config.context, batch_rng, info.rank, info.world)
            micro.append((x.to(device, non_blocking=True), y.to(device, non_blocking=True)))
        return micro

    def loss_of(batch) -> torch.Tensor:
        x, y = batch
        with autocast():
            _, loss = step_model(x, y)
        return loss * y.numel()  # the mean over this micro-batch's tokens, as a sum

    timed = {"seconds": 0.0, "tokens": 0}
    bar = progress_bar(cfg.steps, start) if show_progress and info.is_main else None

    def record(step: StepLog) -> None:
        losses.append(step.loss)
        if step.step > start + 1:  # the first step pays for warm-up (and compilation): not timed
            timed["seconds"] += step.seconds
            timed["tokens"] += step.tokens
        if ((cfg.eval_every and step.step % cfg.eval_every == 0) or step.step == cfg.steps) and (info.is_main or fsdp):
            val_losses.append((step.step, evaluate(wrapped if fsdp else model, data.val, cfg.batch_size, model_config.context,
                                                   cfg.eval_batches, cfg.seed + 1, device, autocast)))
        if bar:
            tps = f"{timed['tokens'] / timed['seconds']:,.0f}" if timed["seconds"] else "…"
            val = f"{val_losses[-1][1]:.3f}" if val_losses else "…"
            bar[0].update(bar[1], completed=step.step, loss=f"{losses[-1]:.3f}", val=val, tps=tps)
        if out_dir is not None and cfg.checkpoint_every and step.step % cfg.checkpoint_every == 0 and step.step < cfg.steps and (info.is_main or fsdp):
            checkpoint(step.step)

    if bar:
        bar[0].start()
    model.train()
    try:
        run_steps(module=wrapped, optimizer=optimizer, info=info, start=start, total=cfg.steps, schedule=lambda step: lr_at(step, cfg),
                  batches=batches, loss_of=loss_of, count_of=lambda batch: batch[1].numel(), tokens_of=lambda batch: batch[1].numel(),
                  grad_clip=cfg.grad_clip, callbacks=[record])
    finally:
        if bar:
            bar[0].stop()

    tokens_per_s = timed["tokens"] / timed["seconds"] if timed["seconds"] else 0.0
    result = TrainResult(train_losses=losses, eval_losses=val_losses, steps=cfg.steps, seconds=timed["seconds"], tokens_per_s=tokens_per_s,
                         start_step=start, rank=info.rank, world=info.world, sharding=cfg.sharding if info.enabled else "none", dtype=dtype,
                         output=out_dir, trainable=model.num_parameters(), total=model.num_parameters())
    if out_dir is not None and (info.is_main or fsdp):
        from ..plot import save_loss_curve

        result.checkpoint = checkpoint(cfg.steps)
        if info.is_main:
            result.plot = save_loss_curve(losses, val_losses, out_dir / LOSS_PLOT)
    result.model = model.eval()  # under FSDP its weights are this process's shards; the checkpoint holds them whole
    return result
