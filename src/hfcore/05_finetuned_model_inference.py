"""Using a fine-tuned model: the adapter loaded, merged, and switched off, side by side.

What you learn:
- `PeftModel.from_pretrained(base, adapter)`: the base model with the LoRA layers beside it;
- `llm-deeper merge`: ΔW folded into the weights, a plain HF folder any loader (or server) takes;
- `disable_adapter()`: the same object answers as the base model again, no reload;
- that loaded and merged give the same answers, and what the fine-tune changed.

Run: python src/hfcore/05_finetuned_model_inference.py   (--quick: tiny random model, seconds)
Takes: about 45 s on 2 CPU cores with lesson 04's adapter (44 s measured); without it, it trains a small one first (~1-2 minutes more).
"""

# %%
import torch

from llm_deeper.data.sft import read_jsonl
from llm_deeper.finetune.config import FinetuneConfig
from llm_deeper.finetune.loop import train
from llm_deeper.finetune.merge import load_with_adapter, merge_adapter
from llm_deeper.finetune.tool_probe import expected_tool, prompt_messages
from llm_deeper.inference.engine import Engine
from llm_deeper.inference.sampling import SamplingConfig
from llm_deeper.lesson import check, close, done, is_quick, logits_tolerance, output_dir, saved, section, show
from llm_deeper.models.loaders import load_model
from llm_deeper.tools.formats import HERMES
from llm_deeper.tools.render import chat_prompt

out = output_dir("hfcore_05")
quick = is_quick()
from llm_deeper.finetune.tool_recipe import ToolRecipe, lesson_setup  # noqa: E402

section("1. An adapter to use")
lesson04 = output_dir("hfcore_04")
if not quick and (lesson04 / "lora" / "adapter_config.json").exists():
    setup = lesson_setup(lesson04, quick=False)
    adapter = lesson04 / "lora"
    show("adapter", f"{adapter} (from lesson 04)")
else:
    setup = lesson_setup(out, quick)
    adapter = out / "lora"
    print("  training a small adapter first (lesson 04 writes a better one)", flush=True)
    train(FinetuneConfig(data=setup.train, output=adapter, model=setup.model, method="lora", max_steps=setup.steps,
                         batch_size=setup.batch_size, max_length=setup.max_length, lr=1e-3 if not quick else 5e-2, seed=0))
check("the adapter folder is a PEFT adapter", (adapter / "adapter_config.json").exists())

# %%
section("2. Three ways to run it")
tuned, tokenizer = load_with_adapter(setup.model, adapter)  # PeftModel.from_pretrained inside
merged_dir = merge_adapter(setup.model, adapter, out / "merged")  # what `llm-deeper merge` does
saved(merged_dir)
merged_loaded, base_loaded = load_model(str(merged_dir)), load_model(setup.model)
merged, base = merged_loaded.model, base_loaded.model
show("loaded", type(tuned).__name__ + " (LoRA layers beside the frozen weights)")
show("merged", type(merged).__name__ + " (plain model, ΔW inside the weights)")

cases = [e for e in read_jsonl(setup.test) if expected_tool(e)][: 2 if quick else 4]
texts = [chat_prompt(tokenizer, prompt_messages(e), e.tools) for e in cases]
first = tokenizer(texts[0], return_tensors="pt", add_special_tokens=False)
with torch.no_grad():
    loaded_logits = tuned(**first).logits
    merged_logits = merged(**first).logits
    with tuned.disable_adapter():  # the adapter switched off, same object
        off_logits = tuned(**first).logits
    base_logits = base(**first).logits
# W·x + B·(A·x) and (W + B·A)·x round differently in every layer: fp32 rounding of that size is all we allow.
tolerance = logits_tolerance(merged_logits, base.config.hidden_size, base.config.num_hidden_layers)
ok, diff = close(loaded_logits, merged_logits, atol=tolerance)
check("merged gives the loaded adapter's logits", ok, diff)
ok, diff = close(off_logits, base_logits, atol=1e-5)  # the same weights through the same kernels: no reordering, 0 on any CPU
check("switched off gives exactly the base model's logits", ok, diff)
check("the adapter changes the model", not close(loaded_logits, base_logits, atol=tolerance)[0], close(loaded_logits, base_logits)[1])

# %%
section("3. Side by side on held-out prompts")


def answers(engine, adapter: str | None, tokens: int) -> list[str]:
    """Greedy replies through the engine, all prompts decoded together; a call ends at its end marker."""
    config = SamplingConfig(max_new_tokens=tokens, temperature=0.0, stop=("</tool_call>",))
    replies = engine.generate_many([prompt_messages(e) for e in cases], config, adapter=adapter, each=[{"tools": e.tools} for e in cases])
    return [r.text + (r.stop_string or "") for r in replies]


tokens = 8 if quick else 48
with Engine(base_loaded, adapters={"tuned": adapter}) as engine:  # base weights once, the adapter picked per request
    offs, ons = answers(engine, None, tokens), answers(engine, "tuned", tokens)
with Engine(merged_loaded) as engine:
    foldeds = answers(engine, None, tokens)
same = 0
for example, off, on, folded in zip(cases, offs, ons, foldeds):
    same += on == folded
    print(f"\n  user: {prompt_messages(example)[-1]['content']}   (expected tool: {expected_tool(example)})")
    print(f"    adapter off : {off[:110]!r}")
    print(f"    adapter on  : {on[:110]!r}")
    print(f"    merged      : {folded[:110]!r}")
    calls = HERMES.parse(on).calls
    if calls:
        print(f"    parsed call : {calls[0].name}({calls[0].arguments})")
check("loaded and merged answer the same, token for token", same == len(cases))
print("\n  Lesson 04's six LoRA steps on 12 conversations are a demonstration, not a tool-caller;")
recipe = ToolRecipe()
print(f"  the speedrun's fine-tune (`make run`: {recipe.n_train} conversations, {recipe.max_steps} steps) measures how often")
print("  its adapter calls the right tool on held-out prompts.")
done()
