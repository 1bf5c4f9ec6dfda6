"""A tool-calling data set, and a full fine-tune of the default model on it.

What you learn:
- the data shape: OpenAI messages (assistant `tool_calls`, `role: "tool"` results) plus a `tools` column;
- how one conversation becomes tokens through the chat template and the server's tool renderer;
- the assistant-only loss mask, and why the end-of-turn token must be inside it;
- a full fine-tune: every weight trains, with AdamW keeping two more numbers per weight.

Run: python src/hfcore/03_dataset_plus_finetune_full.py   (--quick: tiny random model, seconds)
Takes ~1-2 minutes on 2 CPU cores (6 full-model steps of 2 conversations; 75 s measured).
"""

# %%
import json

from llm_deeper.data.sft import read_jsonl
from llm_deeper.data.sft_render import IGNORE, tokenize_dataset, tokenize_example
from llm_deeper.finetune.config import FinetuneConfig
from llm_deeper.finetune.loop import train
from llm_deeper.finetune.tool_recipe import lesson_setup
from llm_deeper.lesson import check, done, is_quick, output_dir, saved, section, show
from llm_deeper.models.loaders import load_tokenizer

out = output_dir("hfcore_03")
setup = lesson_setup(out, is_quick())

section("1. The data: OpenAI messages + a tools column")
examples = read_jsonl(setup.train)
example = next(e for e in examples if e.meta.get("kind", "call") == "call" and e.meta.get("expected_tool"))  # one call, its result, the answer
show("files", f"{setup.train} ({len(examples)} conversations), {setup.test}")
for message in example.messages:
    print("  " + json.dumps(message, ensure_ascii=False)[:150])
show("tools offered", [t["function"]["name"] for t in example.tools])
check("the assistant first calls a tool, the tool answers, the assistant replies",
      [m["role"] for m in example.messages] == ["user", "assistant", "tool", "assistant"] and bool(example.messages[1].get("tool_calls")))
check("the expected tool is among the tools offered", example.meta["expected_tool"] in [t["function"]["name"] for t in example.tools])

# %%
section("2. Rendering and the assistant-only mask")
tokenizer = load_tokenizer(setup.model)
item = tokenize_example(tokenizer, example)
trained = tokenizer.decode([t for t, label in zip(item.input_ids, item.labels) if label != IGNORE])
show("tokens", len(item.input_ids))
show("tokens the loss trains on", f"{item.trained_tokens} ({100 * item.trained_tokens / len(item.input_ids):.0f}%)")
print("  trained text:", repr(trained[:240]))
check("the tool call is trained, in hermes format", trained.startswith("<tool_call>{\"name\":\"" + example.meta["expected_tool"]))
end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
check("the end-of-turn token is a target (or the model never learns to stop)", end_of_turn in [l for l in item.labels if l != IGNORE])
check("the tool's answer is read, not trained", "<tool_response>" in tokenizer.decode(item.input_ids) and "<tool_response>" not in trained)
rows, stats = tokenize_dataset(tokenizer, examples, max_length=setup.max_length)
show("data set", f"{stats.examples} conversations, {stats.tokens:,} tokens, {stats.trained_tokens:,} trained, {stats.truncated} cut at {setup.max_length}")
check("no conversation lost its assistant part to the cut", stats.dropped == 0)

# %%
section("3. Full fine-tune: every weight trains")
config = FinetuneConfig(data=setup.train, eval_data=setup.test, output=out / "full", method="full", model=setup.model,
                        max_steps=setup.steps, batch_size=setup.batch_size, max_length=setup.max_length, lr=2e-5, seed=0)
result = train(config, on_log=lambda s: print(f"  step {s.step}/{s.total_steps}  loss {s.loss:.3f}  {s.tokens_per_s:.0f} tok/s", flush=True))
show("trainable parameters", f"{result.trainable:,} of {result.total:,}")
show("time per step", f"{result.seconds / result.steps:.1f} s")
show("peak memory (RSS)", f"{result.peak_rss_mb:,.0f} MB")
show("held-out loss", f"{result.eval_losses[0][1]:.3f} → {result.eval_losses[-1][1]:.3f}")
check("a full fine-tune trains 100% of the weights", result.trainable == result.total)
check("the run did every step", result.steps == setup.steps)
if not setup.quick:
    check("held-out loss went down (a training outcome: seed 0 fixes it)", result.eval_losses[-1][1] < result.eval_losses[0][1])
    check("weights + grads + Adam's 2 moments need > 4× the fp32 weights in memory", result.peak_rss_mb * 2**20 > 4 * 4 * result.total)
check("the output is a standalone HF folder", (out / "full" / "config.json").exists() and (out / "full" / "model.safetensors").exists())
saved(out / "full")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.figure(figsize=(6, 3.5))
plt.plot(range(1, len(result.train_losses) + 1), result.train_losses, marker="o", label="train (per step)")
plt.xlabel("step")
plt.ylabel("loss per trained token")
plt.title("Full fine-tune")
plt.legend()
plt.tight_layout()
plt.savefig(out / "full_loss.png", dpi=110)
saved(out / "full_loss.png")
done()
