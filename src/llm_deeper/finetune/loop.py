"""The training job behind `llm-deeper finetune` (full or LoRA, one process, DDP or FSDP), on the shared loop.

One job for both methods: the only difference is which parameters have
`requires_grad`. The steps run in `train.loop.run_steps` (the loop TinyGPT
pre-training runs too): under `torchrun` each process takes its own slice of
every global batch, and the loss is divided by the number of labelled tokens in
the *whole* optimizer step (all micro-batches, all processes), so 2 processes
× batch B give the same update as 1 process × batch 2B, whatever the
conversations' lengths. What stays here is what fine-tuning decides: the rows
and their order per epoch, the model's loss on a batch (`TokenLoss`: a batch is
collate's `input_ids`, `attention_mask` and `labels`; per-token loss weights
would travel beside the labels), evaluation and checkpoints at epoch ends, the
adapter or model folder written at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..errors import UserError
from ..train.loop import StepLog, TrainResult, make_optimizer, peak_rss_mb, run_steps
from . import checkpoint
from .checkpoint import Progress
from .config import FinetuneConfig


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


BUCKET_WINDOW = 16  # steps sorted by length together: the tool recipe's 40 steps x 4 went from 28% padding to 4% (whole-epoch sort: 1%, less mixing)


def bucketed(order: list[int], lengths: list[int], per_step: int, seed: int) -> list[int]:
    """`order` regrouped so each step's rows have similar lengths: sort within windows, then shuffle the steps.

    Every row keeps its place in the epoch (same rows, same count); only which rows share a step changes.
    """
    import torch

    whole = len(order) - len(order) % per_step  # rows past the last whole step stay at the end (unused this epoch)
    window = per_step * BUCKET_WINDOW
    steps = []
    for start in range(0, whole, window):
        chunk = sorted(order[start:min(start + window, whole)], key=lambda i: lengths[i])
        steps += [chunk[i:i + per_step] for i in range(0, len(chunk), per_step)]
    shuffled = torch.randperm(len(steps), generator=torch.Generator().manual_seed(seed + 1)).tolist()
    return [i for s in shuffled for i in steps[s]] + order[whole:]


def kept_together(order: list[int], groups: list[str | None], per_step: int, lengths: list[int] | None = None, seed: int = 0) -> list[int]:
    """`order` regrouped so the rows of each group (the data's `batch_group`) share a step; bucketed when `lengths` are given.

    Units are a lone row or a whole group, placed where the group's first row falls in `order`; with `lengths`,
    units are sorted by their longest row within windows of BUCKET_WINDOW steps and the steps shuffled, as
    `bucketed` does. Steps are filled first-fit, so a unit never straddles two; rows left in unfilled steps go
    last (unused this epoch, like the tail of a plain order).
    """
    import torch

    members: dict[str, list[int]] = {}
    for i in order:
        if groups[i] is not None:
            members.setdefault(groups[i], []).append(i)
    too_big = next((g for g in dict.fromkeys(groups) if g is not None and len(members.get(g, ())) > per_step), None)  # the first in the file
    if too_big is not None:
        raise UserError(f"batch_group {too_big!r} has {len(members[too_big])} rows, more than one step's {per_step}: raise --batch-size or split the group")
    units, placed = [], set()
    for i in order:
        if groups[i] is None:
            units.append([i])
        elif groups[i] not in placed:
            placed.add(groups[i])
            units.append(members[groups[i]])
    if lengths is not None:
        window, sorted_units, start = per_step * BUCKET_WINDOW, [], 0
        while start < len(units):
            end, rows = start, 0
            while end < len(units) and rows < window:
                rows += len(units[end])
                end += 1
            sorted_units += sorted(units[start:end], key=lambda unit: max(lengths[i] for i in unit))
            start = end
        units = sorted_units
    steps, open_steps = [], []
    for unit in units:
        room = next((s for s in open_steps if len(s) + len(unit) <= per_step), None)
        if room is None:
            room = []
            open_steps.append(room)
        room += unit
        if len(room) == per_step:
            open_steps.remove(room)
            steps.append(room)
    if lengths is not None:
        steps = [steps[s] for s in torch.randperm(len(steps), generator=torch.Generator().manual_seed(seed + 1)).tolist()]
    return [i for step in steps for i in step] + [i for step in open_steps for i in step]


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def train(config: FinetuneConfig, on_log: Callable[[StepLog], None] | None = None, on_note: Callable[[str], None] | None = None) -> TrainResult:
    """Fine-tune as `config` says; write the adapter/model to config.output; return the figures."""
    import torch

    from ..data.sft_render import collate
    from ..train.distributed import cleanup, setup
    from ..train.schedule import warmup_linear
    from ..train.sharding import full_trainable_state, load_trainable_state, local_mb, wrap_for_training
    from .modeling import build_trainable, decoder_layers, make_token_loss, parameter_counts

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

    loss_module = make_token_loss(model, decision_weight=config.decision_weight, decision_tokens=config.decision_tokens)
    train_module = wrap_for_training(loss_module, info, config.sharding, decoder_layers(loss_module))
    # Every process evaluates (equal results): under FSDP each forward is a collective; under DDP the local replica is enough.
    eval_module = train_module if info.enabled and config.sharding == "fsdp" else loss_module
    # After sharding: FSDP replaces the parameters with shards.
    optimizer = make_optimizer(loss_module.parameters(), config.learning_rate, config.weight_decay)

    progress = Progress()
    torch.manual_seed(config.seed + info.rank)  # dropout masks: reproducible, different per process
    if resumed is not None:
        load_trainable_state(loss_module, optimizer, resumed["model"], resumed["optimizer"], info, config.sharding)
        torch.set_rng_state(resumed["rng"])
        progress = resumed["progress"]
        if on_note and info.is_main:
            on_note(f"resumed from step {progress.step} of {total_steps}")
    elif eval_rows:
        progress.eval_losses.append((0, evaluate(eval_module, eval_rows, tokenizer, config.batch_size, device)))
    start = progress.step

    def save_checkpoint() -> None:
        weights, optimizer_state = full_trainable_state(loss_module, optimizer, info, config.sharding)  # a collective under FSDP
        if info.is_main:
            checkpoint.save(config.output, progress, weights, optimizer_state, torch.get_rng_state())
        info.barrier()

    orders: dict[int, list[int]] = {}

    def batches(step: int) -> list[dict]:
        """This process's micro-batches of `step`: its slice of each, from the epoch's seeded order."""
        epoch, in_epoch = divmod(step, steps_per_epoch)
        if epoch not in orders:
            orders.clear()
            orders[epoch] = torch.randperm(len(rows), generator=torch.Generator().manual_seed(config.seed * 1000 + epoch)).tolist()
            groups = [r.group for r in rows]
            if any(g is not None for g in groups):  # twins and other groups train in one step
                lengths = [len(r.input_ids) for r in rows] if config.bucket else None
                orders[epoch] = kept_together(orders[epoch], groups, per_step, lengths, config.seed * 1000 + epoch)
            elif config.bucket:
                orders[epoch] = bucketed(orders[epoch], [len(r.input_ids) for r in rows], per_step, config.seed * 1000 + epoch)
        first = in_epoch * per_step
        micro = []
        for a in range(config.grad_accum):
            chunk = orders[epoch][first + a * per_micro: first + (a + 1) * per_micro]
            mine = chunk[info.rank * config.batch_size:(info.rank + 1) * config.batch_size]
            micro.append({k: v.to(device) for k, v in collate([rows[i] for i in mine], pad_id(tokenizer)).items()})
        return micro

    def record(log: StepLog) -> None:
        progress.step = log.step
        progress.epoch, progress.batch_in_epoch = divmod(log.step, steps_per_epoch)
        progress.seconds += log.seconds
        progress.tokens += log.tokens
        progress.train_losses.append(log.loss)
        log.epoch = (log.step - 1) // steps_per_epoch
        log.tokens_per_s = progress.tokens / max(progress.seconds, 1e-9)
        if on_log and info.is_main:
            on_log(log)

    def save_on_schedule(log: StepLog) -> bool:
        """Checkpoint every --save-every steps and at each epoch end (after its evaluation); halt at --halt-after.
        The last step ends an epoch too: a run cut short by --max-steps is scored where it stops (the tool
        recipe's 80 steps are part of a 128-step epoch, and its stage reads the held-out loss after them)."""
        epoch_end = log.step % steps_per_epoch == 0 or log.step == total_steps
        if epoch_end and eval_rows:
            progress.eval_losses.append((log.step, evaluate(eval_module, eval_rows, tokenizer, config.batch_size, device)))
        halt = config.halt_after is not None and log.step >= config.halt_after
        if epoch_end or halt or (config.save_every and log.step % config.save_every == 0):
            save_checkpoint()
        halted.append(halt)
        return halt

    halted: list[bool] = []  # the last step's answer: did --halt-after stop the run there?
    loss_module.train()
    run_steps(module=train_module, optimizer=optimizer, info=info, start=start, total=total_steps,
                     schedule=lambda step: warmup_linear(step, config.learning_rate, config.warmup_steps, total_steps),
                     batches=batches, loss_of=lambda batch: train_module(**batch)[0],
                     count_of=lambda batch: int((batch["labels"][:, 1:] != -100).sum()),
                     tokens_of=lambda batch: int(batch["attention_mask"].sum()),
                     grad_clip=config.grad_clip, callbacks=[record, save_on_schedule])
    halted = bool(halted and halted[-1])

    counts = parameter_counts(model)
    result = TrainResult(
        train_losses=progress.train_losses, eval_losses=progress.eval_losses, steps=progress.step, seconds=progress.seconds,
        tokens_per_s=progress.tokens / max(progress.seconds, 1e-9), tokens=progress.tokens, start_step=start, halted=halted, rank=info.rank,
        world=info.world, sharding=config.sharding if info.enabled else "none", dtype=config.base_dtype,
        param_mb=local_mb(loss_module.parameters()), optimizer_mb=local_mb(v for state in optimizer.state.values() for v in state.values()),
        peak_rss_mb=peak_rss_mb(), output=config.output, method=config.method, trainable=counts[0], total=counts[1], notes=notes,
    )
    if not halted:
        weights, _ = full_trainable_state(loss_module, None, info, config.sharding, everything=config.method == "full")
        if info.is_main:
            save_output(model, tokenizer, config, result, weights)
            checkpoint.manager(config.output).clear()  # the run finished: its output replaces them
    info.barrier()
    cleanup(info)
    return result


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
