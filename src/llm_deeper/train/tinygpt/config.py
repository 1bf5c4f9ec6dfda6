"""TinyGPT pre-training settings, one dataclass with a comment per knob."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class TrainConfig:
    """How to train; the model's shape lives in `TinyGPTConfig`."""

    steps: int = 2000  # optimizer steps (nanoGPT's max_iters)
    batch_size: int = 12  # sequences per micro-batch, per process
    grad_accum: int = 1  # micro-batches summed before each optimizer step
    lr: float = 1e-3  # peak learning rate, reached after warmup
    min_lr: float = 1e-4  # floor of the cosine decay (nanoGPT: lr / 10)
    warmup_steps: int = 100  # linear ramp from ~0 to lr; avoids early large, badly aimed updates
    decay_steps: int = 0  # cosine from lr to min_lr ends here; 0 = `steps`
    weight_decay: float = 0.1  # AdamW decay on matrices only (not norms, biases)
    beta1: float = 0.9  # Adam momentum
    beta2: float = 0.99  # Adam second-moment decay; 0.99 suits small batches (nanoGPT's char config)
    grad_clip: float = 1.0  # clip the global gradient norm to this (0 = off)
    eval_every: int = 250  # steps between validation losses (0 = only at the end); nanoGPT's eval_interval
    eval_batches: int = 20  # validation batches per evaluation (nanoGPT's eval_iters on CPU)
    checkpoint_every: int = 0  # steps between checkpoints (0 = only at the end)
    seed: int = 1337  # model init, batch order and dropout
    threads: int = 0  # torch CPU threads; 0 = auto: one per idle core (see distributed.auto_threads)
    compile: bool = False  # torch.compile the model (pays only for long runs)
    dtype: str = "auto"  # "auto": bf16 autocast where the hardware has bf16 units (≈2× faster matmuls, weights stay fp32), else fp32; or "bfloat16" / "float32"
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
    sharding: str = "ddp"  # under torchrun: "ddp" (a full replica per process) or "fsdp" (weights, gradients and Adam state split N ways)

    def __post_init__(self) -> None:
        if self.sharding not in ("ddp", "fsdp"):
            from ...errors import UserError

            raise UserError(f"--sharding {self.sharding!r}: use ddp or fsdp")
        if self.decay_steps == 0:
            self.decay_steps = self.steps

    def to_dict(self) -> dict:
        return asdict(self)
