"""transformers from the inside: tokenizer, model, logits, generate, memory.

What you learn:
- what a tokenizer produces (ids, special tokens) and how a chat template turns messages into one string;
- AutoModel (the transformer body) vs AutoModelForCausalLM (body + output head);
- how logits become next-token probabilities ("The capital of France is" → " Paris");
- in-context learning: examples in the prompt teach a made-up rule, with no weight update;
- what `generate` does with greedy and sampling settings;
- how many parameters the default model has and what they cost in memory per dtype.

Run: python src/hfcore/01_transformers.py   (or: llm-deeper lessons run hfcore/01)
Takes ~15 s on 2 CPU cores (the default model loads in ~2 s).
"""

# %%
import torch

from llm_deeper.chat_format import prompt_ids
from llm_deeper.inference.sampling import SamplingConfig
from llm_deeper.lesson import check, close, done, section, show
from llm_deeper.models.inspect import count_parameters
from llm_deeper.models.loaders import load_model
from llm_deeper.models.registry import DEFAULT_MODEL

section("1. The tokenizer: text → ids → text")
loaded = load_model(DEFAULT_MODEL)
model, tokenizer = loaded.model, loaded.tokenizer
text = "The capital of France is"
ids = tokenizer(text)["input_ids"]
show("text", repr(text))
show("ids", ids)
show("pieces", tokenizer.convert_ids_to_tokens(ids))  # 'Ġ' marks a leading space in byte-level BPE
check("decoding the ids gives the text back", tokenizer.decode(ids) == text)
check("the vocabulary has 49,152 entries", len(tokenizer) == 49152, f"len(tokenizer) = {len(tokenizer)}")
specials = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")}
show("special tokens", specials)
check("ChatML markers are single tokens with ids 0, 1, 2", list(specials.values()) == [0, 1, 2])

# %%
section("2. The chat template: messages → one string")
messages = [{"role": "user", "content": "What is the capital of France?"}]
rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
print(rendered)
check("the template wraps each turn in <|im_start|>role … <|im_end|>", "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in rendered)
check("add_generation_prompt leaves the assistant turn open", rendered.endswith("<|im_start|>assistant\n"))
check("with no system message, this template adds its own", "SmolLM" in rendered)

# %%
section("3. AutoModel vs AutoModelForCausalLM")
from transformers import AutoModel  # noqa: E402  (imported where it is explained)

body = AutoModel.from_pretrained(loaded.folder, dtype=torch.float32).eval()
batch = tokenizer(text, return_tensors="pt")
with torch.no_grad():
    hidden = body(**batch).last_hidden_state
    logits = model(**batch).logits
show("AutoModel → last_hidden_state", tuple(hidden.shape))
show("AutoModelForCausalLM → logits", tuple(logits.shape))
check("the body gives one 576-wide vector per token", tuple(hidden.shape) == (1, len(ids), 576))
ok, diff = close(model.lm_head(hidden), logits, atol=1e-4)  # the same 576-long products: 4·eps·√576·|logit ≈ 20| = 2.3e-4 bounds any reorder
check("logits = output head applied to the body's vectors", ok, diff)
check("the head is the embedding matrix (tied weights)", model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr())

# %%
section("4. Logits → next-token probabilities")
probs = torch.softmax(logits[0, -1], dim=-1)
top = torch.topk(probs, 5)
print(f"  {'next token':<14} {'probability':>11}")
for p, i in zip(top.values.tolist(), top.indices.tolist()):
    print(f"  {tokenizer.decode([i])!r:<14} {p:>11.3f}")
check("probabilities sum to 1", abs(float(probs.sum()) - 1) < 1e-4)
check("the most likely next token is ' Paris'", tokenizer.decode([top.indices[0]]) == " Paris", f"p = {top.values[0]:.3f}")
# fp32 on any CPU moves a probability by ~1e-6 (BLAS rounding), far inside the 0.01 below.
check("' Paris' takes about three quarters of the probability (p ≈ 0.77)", abs(float(top.values[0]) - 0.77) < 0.01, f"p = {top.values[0]:.4f}")

# %%
section("4b. In-context learning: a rule taught by examples in the prompt")
# A made-up rule (swap the two numbers) the model cannot know: score the right answer's tokens
# with and without three worked examples before the question. No weight changes in between.


def answer_probability(prompt: str, answer: str) -> float:
    """p(answer | prompt): the product of each answer token's probability, teacher-forced."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        log_probs = torch.log_softmax(model(torch.tensor([prompt_ids + answer_ids])).logits[0].float(), dim=-1)
    return float(torch.exp(sum(log_probs[len(prompt_ids) - 1 + i, t] for i, t in enumerate(answer_ids))))


question = "Input: 3 7\nOutput:"
examples = "Input: 1 2\nOutput: 2 1\nInput: 5 9\nOutput: 9 5\nInput: 4 8\nOutput: 8 4\n"
zero_shot, few_shot = answer_probability(question, " 7 3"), answer_probability(examples + question, " 7 3")
show("p(' 7 3') with no examples", f"{zero_shot:.2e}")
show("p(' 7 3') after three examples", f"{few_shot:.2e}")
check("three examples in the prompt make the right answer far more likely (> 100×)", few_shot > 100 * zero_shot,
      f"{few_shot / zero_shot:,.0f}×")

# %%
section("5. generate: greedy and sampled")
prompt = torch.tensor([prompt_ids(tokenizer, messages)])
greedy = SamplingConfig(max_new_tokens=12, temperature=0.0)
with torch.no_grad():
    a = model.generate(prompt, attention_mask=torch.ones_like(prompt), pad_token_id=2, **greedy.generate_kwargs())
    b = model.generate(prompt, attention_mask=torch.ones_like(prompt), pad_token_id=2, **greedy.generate_kwargs())
reply = tokenizer.decode(a[0, prompt.shape[1]:], skip_special_tokens=True)
show("greedy reply", repr(reply))
check("greedy decoding is deterministic", torch.equal(a, b))
check("the reply names Paris", "Paris" in reply)
sampled = SamplingConfig(max_new_tokens=12, temperature=1.0, top_p=0.95)
runs = []
for seed in (1, 1, 2):
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), pad_token_id=2, **sampled.generate_kwargs())
    runs.append(tokenizer.decode(out[0, prompt.shape[1]:], skip_special_tokens=True))
for seed, run in zip((1, 1, 2), runs):
    show(f"sampled, seed {seed}", repr(run))
check("sampling with the same seed repeats itself", runs[0] == runs[1])

# %%
section("6. Parameters and memory by dtype")
params = count_parameters(model)
show("parameters", f"{params:,}")
check("SmolLM2-135M has ~134.5 M distinct parameters", 134e6 < params < 135e6)
from llm_deeper.sizing import BYTES_PER_VALUE  # noqa: E402

# 4-bit formats also store scales: Q4_1 (this model's GGUF) 0.625 bytes per weight, NF4 0.516; never 0.5.
for name, bytes_per in (("float32", 4), ("bfloat16", 2), ("float16", 2), ("int8", 1), ("Q4_1", BYTES_PER_VALUE["q4_1"]), ("NF4", BYTES_PER_VALUE["nf4"])):
    print(f"  {name:<9} {bytes_per:5.3f} B/param {params * bytes_per / 2**20:8.0f} MiB of weights")
check("a 4-bit format costs more than half a byte per weight (its scales)", min(BYTES_PER_VALUE["q4_1"], BYTES_PER_VALUE["nf4"]) > 0.5)
fp32_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
check("fp32 weights take 4 bytes per parameter", fp32_bytes == 4 * params, f"{fp32_bytes / 2**20:.0f} MiB")
half = load_model(DEFAULT_MODEL, dtype="bfloat16").model
half_bytes = sum(p.numel() * p.element_size() for p in half.parameters())
check("bfloat16 halves it", half_bytes * 2 == fp32_bytes, f"{half_bytes / 2**20:.0f} MiB")
print("  Training needs more: gradients (same size again) and Adam's two moments (twice again) for every trained weight.")
done()
