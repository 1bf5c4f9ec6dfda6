"""The tool-calling recipe: synthetic data → held-out probe → LoRA fine-tune → probe again.

The speedrun stage and `bench/bench_tool_finetune_accuracy.py` both run it, so
the figures in the report and in bench/RESULTS.md come from one code path.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .loop import TrainResult
    from .tool_probe import ProbeResult


@dataclass
class ToolRecipe:
    """Sizes of one run of the recipe."""

    n_train: int = 256  # training conversations: 80 steps x 2 sees 160 of them once; 40% need no call (data.toolcalls.MIX)
    # Share of the mix's refusals built as twins of its calls (data.toolcalls.with_twins). 0: at 1.0, five seeds gave
    # no correct no-call gain for 12% more padded positions (bench/RESULTS.md, issue 23, near-miss twins).
    twins: float = 0.0
    n_test: int = 60  # held-out conversations (about 6 in 10 expect a tool; the generated ones are tools never trained on)
    distractors: int = 1  # tools offered besides the right one (each adds ~120 prompt tokens)
    max_length: int = 704  # tokens per conversation: 13 of 18 chains keep their second call (3 at 640); ~8% more tokens than 640
    # Conversations per step. The same 160 conversations as 80 steps x 2 instead of 40 x 4 (bucketed, both):
    # held-out exact arguments 0.073 -> 0.146, all right 0.233 -> 0.250 (bench/RESULTS.md, issue 23, 2026-12-07 evening).
    batch_size: int = 2
    epochs: int = 2  # passes over the training data (the second pass is cut short by max_steps)
    # Cap on optimizer steps. A conversation is ~300 tokens with the signature prompt (was ~600), so 80 steps x 2
    # bucketed are 46.4k tokens, 47.6k with padding (40 x 4 unbucketed: 47.4k real, 65.9k with padding): ~340 s at
    # the 140 tok/s of a 2-core AVX2 EPYC, inside the stage's 6 minutes (issue 23).
    max_steps: int | None = 80
    lr: float = 1e-3  # high for LoRA, but the run is short and the format rigid
    rank: int = 16  # LoRA rank
    layers: int | None = 16  # adapt the last 16 of 30 layers (mlx-lm's default): backward stops there, ~1.5x faster steps
    alpha: float = 32.0  # LoRA alpha
    # Attention and MLP projections: held-out right tool 0.68 -> 0.84, exact arguments 0.50 -> 0.75 against attention
    # only (bench/RESULTS.md, issue 16); each step costs ~25% more (392 -> 301 tok/s, quiet machine).
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    warmup_steps: int = 6  # linear warm-up steps
    bucket: bool = True  # length-bucketed batches: 40 x 4 random batches were 28% padding (65.9k tokens for 47.4k real), bucketed 4%
    # Loss weight of each assistant turn's first 2 labels (FinetuneConfig.decision_weight). Same data, seed and batches,
    # 1 -> 5: held-out correct no-call 0.333 -> 0.500, call/no-call decided right 0.633 -> 0.733, selection 0.583 -> 0.528.
    decision_weight: float = 5.0
    probe_limit: int | None = 10  # held-out tool prompts to generate for (None: all); the eval stage scores all 40
    probe_tokens: int = 72  # generated tokens per probe answer (a create_event call needs ~60)
    seed: int = 0  # data, adapter init and order


# The fuller recipe: 5x the data, 7.5x the steps, every held-out conversation probed. ~360k tokens: measured 29.0 min at
# 206 tok/s on one thread beside the suite (AVX-512 EPYC), ~43 min at 140 tok/s (2-core AVX2), inside issue 23's 45.
# Held-out exact arguments 0.146 -> 0.415 against the speedrun recipe (bench/RESULTS.md, 2026-12-07 21:40-22:30 UTC).
FULL = ToolRecipe(n_train=1280, batch_size=4, max_steps=300, epochs=1, warmup_steps=10, probe_limit=None)
RECIPES = {"speedrun": ToolRecipe(), "full": FULL}  # named recipes: `llm-deeper finetune --recipe NAME`, bench_tool_finetune_accuracy.py --recipe=NAME

# One tool offered and 512 tokens: with seed 0, 3 of the 4 conversations and all 4 held-out ones fit. With a
# distractor at 384 tokens none did (two tools' prompt is ~450 tokens), and the run had no step to take.
QUICK = ToolRecipe(n_train=4, n_test=4, distractors=0, max_length=512, batch_size=2, max_steps=2, probe_limit=2, probe_tokens=8, warmup_steps=0)


@dataclass
class ToolRecipeResult:
    """What one run of the recipe measured and wrote; read by attribute (the report's labels live in `figures`)."""

    recipe: ToolRecipe  # the sizes it ran with
    adapter_dir: Path  # the PEFT adapter it trained
    test_file: Path  # the held-out conversations it probed (later evals reuse them)
    train: "TrainResult"  # the fine-tuning run (losses, steps, seconds, tokens/s, parameters)
    before: "ProbeResult"  # tool-call probe of the base model
    after: "ProbeResult"  # the same probe with the adapter loaded from its folder
    loss_curve: Path  # PNG of the training loss per step

    @property
    def loss_before(self) -> float:
        return self.train.eval_losses[0][1]

    @property
    def loss_after(self) -> float:
        return self.train.eval_losses[-1][1]

    @property
    def learned(self) -> bool:
        """Fine-tuning lowered the held-out loss."""
        return self.loss_after < self.loss_before

    def figures(self) -> dict:
        """Report lines: label → rounded value."""
        return {
            "train conversations": self.recipe.n_train,
            "held-out tool prompts": self.after.prompts,
            "held-out loss before": round(self.loss_before, 4),
            "held-out loss after": round(self.loss_after, 4),
            "right tool before": round(self.before.accuracy, 3),
            "right tool after": round(self.after.accuracy, 3),
            "parseable call before": round(self.before.parse_rate, 3),
            "parseable call after": round(self.after.parse_rate, 3),
            "train steps": self.train.steps,
            "train seconds": round(self.train.seconds, 1),
            "train tokens/s": round(self.train.tokens_per_s, 1),
            "train tokens": self.train.tokens,  # unpadded; the stage's budget is ~48k (issue 23)
            "trainable params": self.train.trainable,
            "loss curve": str(self.loss_curve),
        }


def run_tool_recipe(model: str, base, out: Path, recipe: ToolRecipe = ToolRecipe(), log: Callable[[str], None] = print) -> ToolRecipeResult:
    """Run the recipe; `base` is a LoadedModel of `model` used for the before-probe (left untouched)."""
    from ..data.sft import read_jsonl
    from ..data.toolcalls import TEST_MIX, with_twins, write_tool_dataset
    from ..inference.engine import Engine
    from ..train.plot import save_loss_curve
    from .config import FinetuneConfig
    from .loop import train
    from .tool_probe import tool_call_probe

    out = Path(out)
    mix = with_twins(recipe.twins) if recipe.twins else None  # the held-out set keeps TEST_MIX either way
    train_path, test_path = write_tool_dataset(out / "data", recipe.n_train, recipe.n_test, recipe.seed, recipe.distractors, mix=mix, test_mix=TEST_MIX)
    test = read_jsonl(test_path)
    log(f"data: {recipe.n_train} train / {recipe.n_test} test conversations → {train_path.parent}")
    start = time.perf_counter()
    with Engine(base, max_batch=8) as engine:
        before = tool_call_probe(engine, test, recipe.probe_limit, max_new_tokens=recipe.probe_tokens)
    probe_seconds = time.perf_counter() - start
    log(f"base model: right tool on {before.right_tool}/{before.prompts} held-out prompts ({probe_seconds:.0f} s)")
    config = FinetuneConfig(
        data=train_path, eval_data=test_path, output=out / "adapter", method="lora", model=model, epochs=recipe.epochs,
        max_steps=recipe.max_steps, lr=recipe.lr, rank=recipe.rank, alpha=recipe.alpha, batch_size=recipe.batch_size,
        max_length=recipe.max_length, warmup_steps=recipe.warmup_steps, seed=recipe.seed, dropout=0.05, layers=recipe.layers,
        target_modules=list(recipe.targets), bucket=recipe.bucket, decision_weight=recipe.decision_weight,
    )
    result = train(config, on_log=lambda s: log(f"step {s.step}/{s.total_steps} loss {s.loss:.3f} ({s.tokens_per_s:.0f} tok/s)") if s.step % 8 == 0 or s.step == s.total_steps else None)
    curve = save_loss_curve(result.train_losses, [], out / "loss.png", title="LoRA fine-tune on tool calls")
    with Engine(base, adapters={"tuned": config.output}, max_batch=8) as engine:  # the adapter folder as saved: the round trip a user does
        after = tool_call_probe(engine, test, recipe.probe_limit, adapter="tuned", max_new_tokens=recipe.probe_tokens)
    log(f"after LoRA: right tool on {after.right_tool}/{after.prompts} held-out prompts")
    return ToolRecipeResult(recipe=recipe, adapter_dir=config.output, test_file=test_path, train=result, before=before, after=after, loss_curve=curve)


@dataclass
class LessonSetup:
    """What the fine-tuning lessons train on: a model, data files and run sizes."""

    model: str  # registry name or HF folder
    train: Path  # training JSONL
    test: Path  # held-out JSONL
    steps: int  # optimizer steps per run
    batch_size: int  # conversations per step
    max_length: int  # tokens per conversation
    quick: bool  # True: a tiny random model (tests), numbers mean nothing, paths are exercised


def lesson_setup(folder: Path, quick: bool) -> LessonSetup:
    """The default model on a small tool data set; in quick mode a tiny random Llama with a long context instead."""
    from ..data.toolcalls import write_tool_dataset
    from ..models.registry import DEFAULT_MODEL

    folder = Path(folder)
    if quick:
        from ..models.loaders import quiet_transformers
        from ..models.tiny import save_tiny_model

        quiet_transformers()
        tiny = folder / "tiny-llama"
        if not (tiny / "config.json").exists():
            save_tiny_model(tiny, "llama", context=4096)  # byte-level tokens: a tool prompt is ~1,500 of them
        # four conversations: all plain calls, so the lessons' walk-through has one to show
        train, test = write_tool_dataset(folder / "data", n_train=4, n_test=3, seed=0, distractors=1, mix={"call": 1.0})
        return LessonSetup(str(tiny), train, test, steps=2, batch_size=2, max_length=4096, quick=True)
    train, test = write_tool_dataset(folder / "data", n_train=24, n_test=12, seed=0, distractors=1)
    return LessonSetup(DEFAULT_MODEL, train, test, steps=6, batch_size=2, max_length=896, quick=False)  # every first call fits
