"""Settings of one fine-tuning run (the `llm-deeper finetune` flags)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import UserError

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]  # attention projections of Llama-style models
METHODS = ("full", "lora")


@dataclass
class FinetuneConfig:
    """Everything that decides what a run computes; saved next to its output."""

    data: Path  # training JSONL (messages / Alpaca / prompt-completion)
    output: Path  # folder written: a PEFT adapter (lora) or a full HF model (full)
    method: str = "lora"  # "full" trains every weight; "lora" trains low-rank adapters only
    model: str = "smollm2-135m-instruct"  # registry name or HF folder of the base model
    eval_data: Path | None = None  # held-out JSONL; its loss is reported before training and after each epoch
    epochs: int = 1  # passes over the training data
    max_steps: int | None = None  # stop after this many optimizer steps (None: run all epochs); the schedule plans for it
    lr: float | None = None  # peak learning rate; None picks 2e-4 for LoRA, 2e-5 for full
    warmup_steps: int = 0  # linear warm-up, then linear decay to zero
    weight_decay: float = 0.0  # AdamW weight decay, on matrices only (not norms, biases)
    grad_clip: float = 1.0  # clip the global gradient norm to this (0 = off)
    rank: int = 8  # LoRA rank r
    alpha: float = 16.0  # LoRA alpha; the update is scaled by alpha / r
    dropout: float = 0.05  # dropout on the LoRA input
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))  # linear layers that get adapters
    layers: int | None = None  # adapt only the last N decoder layers (mlx-lm's num_layers): backward stops below them; None: all
    batch_size: int = 4  # conversations per micro-batch per process
    grad_accum: int = 1  # micro-batches summed into one optimizer step
    max_length: int = 512  # tokens per sequence; longer conversations are cut (and counted)
    pack: bool = False  # pack several conversations into one row of max_length tokens
    # Batch conversations of similar length (a seeded shuffle, sorted within windows of BUCKET_WINDOW steps, then
    # the steps shuffled): the tool recipe's random batches of 4 were 28% padding (47.4k real of 65.9k tokens).
    bucket: bool = False
    # Loss weight of the first `decision_tokens` labels of each assistant turn (call or words: the decision the
    # issue 23 adapter got wrong on near misses); 1 = plain loss. Training only: held-out losses stay unweighted.
    decision_weight: float = 1.0
    decision_tokens: int = 2  # `<tool_call>` starts with 2 tokens ("<", "tool"); a text answer's first two words
    seed: int = 0  # seeds adapter init, dropout and the data order: same seed, same run
    save_every: int = 0  # also checkpoint every N optimizer steps (0: only at the end of each epoch)
    resume: bool = False  # continue from the newest checkpoint in `output`
    halt_after: int | None = None  # stop (after checkpointing) at this step, as if interrupted; --resume continues
    qlora: bool = False  # load the base in 4-bit (bitsandbytes, CUDA only) and train LoRA on top
    dtype: str | None = None  # base weights: "float32" or "bfloat16"; None: bf16 for LoRA where the hardware has it (see base_dtype), else fp32
    gradient_checkpointing: bool = False  # recompute activations in backward: much less memory, ~1/3 more compute
    sharding: str = "ddp"  # under torchrun: "ddp" (a full replica per process) or "fsdp" (weights, gradients and Adam state split N ways)

    def __post_init__(self) -> None:
        self.data = Path(self.data)
        self.output = Path(self.output)
        self.eval_data = Path(self.eval_data) if self.eval_data else None

    @property
    def base_dtype(self) -> str:
        """The dtype the base loads in. LoRA's base is frozen, so bf16 halves its memory and
        activations and, on hardware with bf16 units, doubles the speed (the adapters stay fp32).
        Full fine-tuning keeps fp32: AdamW's small updates vanish in bf16 weights."""
        if self.dtype not in (None, "auto"):
            return self.dtype
        if self.method != "lora" or self.qlora or self.sharding == "fsdp":  # FSDP shards need one dtype per layer
            return "float32"
        from ..train.precision import resolve_dtype

        return resolve_dtype("auto")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-4 if self.method == "lora" else 2e-5)

    def validate(self) -> "FinetuneConfig":
        if self.method not in METHODS:
            raise UserError(f"unknown method {self.method!r}: use --method full or --method lora")
        if self.qlora and self.method != "lora":
            raise UserError("--qlora trains LoRA adapters on a 4-bit base: use it with --method lora")
        for name in ("epochs", "batch_size", "grad_accum", "max_length", "rank"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.decision_weight <= 0:
            raise UserError(f"--decision-weight must be positive (1 = plain loss), got {self.decision_weight}")
        if self.decision_tokens < 1:
            raise UserError(f"--decision-tokens must be at least 1, got {self.decision_tokens}")
        if self.bucket and self.pack:
            raise UserError("--bucket and --pack both fight padding: use one of them")
        if self.grad_clip < 0:
            raise UserError(f"--grad-clip must be 0 (off) or positive, got {self.grad_clip}")
        if self.learning_rate <= 0:
            raise UserError(f"--lr must be positive, got {self.learning_rate}")
        for path in (self.data, self.eval_data):
            if path is not None and not path.is_file():
                raise UserError(f"data file {path} does not exist (make one with `llm-deeper data make-tools --out DIR`)")
        if self.dtype not in (None, "auto", "float32", "bfloat16"):
            raise UserError(f"--dtype {self.dtype!r}: use float32 or bfloat16 (or auto)")
        if self.sharding not in ("ddp", "fsdp"):
            raise UserError(f"--sharding {self.sharding!r}: use ddp or fsdp")
        if self.layers is not None and self.layers < 1:
            raise UserError(f"--layers {self.layers}: give at least 1 (the number of last decoder layers that get adapters), or leave it out for all")
        if not self.target_modules:
            raise UserError("--target-modules is empty: name at least one linear layer, e.g. q_proj,v_proj")
        return self

    def to_json(self) -> dict:
        record = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in record.items()}
