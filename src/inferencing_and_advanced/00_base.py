"""The inference loop by hand: prefill vs decode, the KV cache, sampling strategies

You will learn:
- generation is two phases: one *prefill* pass over the whole prompt, then one
  *decode* pass per new token; prefill handles hundreds of tokens per second,
  decode only a few dozen, because each decode step reads every weight for one token;
- the KV cache keeps each layer's keys and values so a decode step only computes the
  new token: same logits as recomputing everything, far less work; it grows by
  2 × layers × kv_heads × head_dim × bytes for every token;
- sampling strategies side by side on the default model: greedy, temperature,
  top-k, top-p, repetition penalty, and what a seed fixes;
- the project's engine gives the same greedy tokens as this by-hand loop and as
  transformers' `generate`, and serves several requests in one batch.

Run:   python src/inferencing_and_advanced/00_base.py   (or: llm-deeper lessons run inferencing_and_advanced/00)
Takes: about 30 s on 2 CPU cores (--quick: fewer tokens).
"""

# %%
import time

import torch

from llm_deeper.chat_format import prompt_ids
from llm_deeper.inference.engine import Engine
from llm_deeper.inference.kv_cache import SlotKVCache
from llm_deeper.inference.sampler import apply_penalties, pick_token
from llm_deeper.inference.sampling import SamplingConfig
from llm_deeper.lesson import check, close, done, is_quick, logits_tolerance, section, show
from llm_deeper.models.loaders import load_model

QUICK = is_quick()
NEW_TOKENS = 6 if QUICK else 32
DRAWS = 50 if QUICK else 200  # samples per strategy in section 5

# %% [markdown]
# ## 1. Load the default model and build a prompt
# The chat template turns messages into one token sequence that ends where the
# assistant's reply should begin.

# %%
section("1. The model and the prompt")
loaded = load_model("smollm2-135m-instruct")
model, tokenizer = loaded.model, loaded.tokenizer
config = model.config
messages = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
prompt = torch.tensor([prompt_ids(tokenizer, messages)])
show("prompt tokens", prompt.shape[1])
show("layers / kv heads / head dim", f"{config.num_hidden_layers} / {config.num_key_value_heads} / {config.head_dim}")
check("the prompt ends with the assistant header", tokenizer.decode(prompt[0, -3:]).strip().endswith("assistant"))

# %% [markdown]
# ## 2. Prefill: the whole prompt in one forward pass
# With `use_cache=True` the model also returns its keys and values for every
# prompt position: the KV cache.

# %%
section("2. Prefill")
with torch.inference_mode():
    model(input_ids=prompt[:, :4])  # warm-up: the first call pays one-time set-up costs
    start = time.perf_counter()
    out = model(input_ids=prompt, use_cache=True)
    prefill_seconds = time.perf_counter() - start
cache = out.past_key_values
next_token = int(out.logits[0, -1].argmax())
show("prefill time", f"{prefill_seconds * 1000:.0f} ms for {prompt.shape[1]} tokens ({prompt.shape[1] / prefill_seconds:.0f} tokens/s)")
show("first token", repr(tokenizer.decode([next_token])))
check("the cache holds one entry per prompt position", cache.get_seq_length() == prompt.shape[1])


def cache_bytes(c) -> int:
    """Bytes held by a transformers cache (keys + values of every layer)."""
    return sum(layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size() for layer in c.layers)


per_token = SlotKVCache.bytes_per_token(config.num_hidden_layers, config.num_key_value_heads, config.head_dim, 4)
show("KV cache per token (fp32)", f"2 × {config.num_hidden_layers} × {config.num_key_value_heads} × {config.head_dim} × 4 bytes = {per_token:,} bytes")
check("the cache's real size matches the formula", cache_bytes(cache) == per_token * prompt.shape[1], f"{cache_bytes(cache):,} bytes")

# %% [markdown]
# ## 3. Decode: one token per step, reusing the cache
# Each step feeds only the newest token; attention reads the cached keys and
# values of everything before it.

# %%
section("3. Decode with the KV cache")
tokens = [next_token]
step_times = []
with torch.inference_mode():
    for _ in range(NEW_TOKENS - 1):
        start = time.perf_counter()
        out = model(input_ids=torch.tensor([[tokens[-1]]]), cache=cache, use_cache=True)
        step_times.append(time.perf_counter() - start)
        cache = out.past_key_values
        tokens.append(int(out.logits[0, -1].argmax()))
        if tokens[-1] == tokenizer.eos_token_id:
            break
decode_rate = len(step_times) / sum(step_times)
show("reply", repr(tokenizer.decode(tokens, skip_special_tokens=True)))
show("decode", f"{sum(step_times) / len(step_times) * 1000:.0f} ms per token ({decode_rate:.1f} tokens/s)")
# Timings are printed, never checked: on a quiet machine prefill moves 10× or more tokens per second
# than decode (one matrix-matrix pass vs one matrix-vector pass per token), a busy machine blurs it.
show("prefill vs decode", f"{prompt.shape[1] / prefill_seconds:.0f} vs {decode_rate:.1f} tokens/s")
check("decode ran one forward pass per new token", len(step_times) == len(tokens) - 1)
check("the cache grew by one entry per decoded token", cache.get_seq_length() == prompt.shape[1] + len(tokens) - 1)
check("its size still follows the formula", cache_bytes(cache) == per_token * cache.get_seq_length(),
      f"{cache_bytes(cache) / 1e6:.2f} MB for {cache.get_seq_length()} tokens")
show("at the full context", f"{per_token * config.max_position_embeddings / 1e9:.2f} GB per sequence for {config.max_position_embeddings} tokens")

# %% [markdown]
# ## 4. Without a cache: same numbers, more work
# Recomputing the whole sequence for the last step gives the same logits as
# the cached step, but costs a full pass over every token so far.

# %%
section("4. Cached vs uncached")
full = torch.cat([prompt, torch.tensor([tokens[:-1]])], dim=1)
with torch.inference_mode():
    start = time.perf_counter()
    uncached = model(input_ids=full).logits[0, -1]
    uncached_seconds = time.perf_counter() - start
    # Rebuild the cache up to the step before, then take the last step with it.
    short = model(input_ids=full[:, :-1], use_cache=True)
    start = time.perf_counter()
    cached = model(input_ids=full[:, -1:], cache=short.past_key_values, use_cache=True).logits[0, -1]
    cached_seconds = time.perf_counter() - start
# One step against the cache vs the whole sequence: other matmul shapes, other summation order in 30 layers.
same, detail = close(cached, uncached, atol=logits_tolerance(uncached, model.config.hidden_size, model.config.num_hidden_layers))
check("cached and uncached last-step logits agree", same, detail)
show("cached vs uncached step", f"{cached_seconds * 1000:.0f} ms vs {uncached_seconds * 1000:.0f} ms")
check("the cached step computed 1 new position, the uncached pass all of them again",
      short.past_key_values.get_seq_length() == full.shape[1] and full.shape[1] > 1)

# %% [markdown]
# ## 5. Sampling strategies on one next-token distribution
# Temperature divides the logits (low = sharper, high = flatter); top-k keeps
# the k best tokens; top-p keeps the smallest set with that much probability;
# a repetition penalty pushes down tokens already seen.

# %%
section("5. Sampling strategies")
with torch.inference_mode():
    logits = model(input_ids=prompt).logits[0, -1].float()


def entropy(scores) -> float:
    p = torch.softmax(scores, dim=-1)
    return float(-(p * torch.log(p.clamp_min(1e-12))).sum())


entropies = {t: entropy(logits / t) for t in (0.5, 1.0, 1.5)}
for t, h in entropies.items():
    show(f"entropy at temperature {t}", f"{h:.2f} nats")
check("higher temperature flattens the distribution", entropies[0.5] < entropies[1.0] < entropies[1.5])
top5 = torch.topk(torch.softmax(logits, -1), 5)
show("5 most likely first tokens", ", ".join(f"{tokenizer.decode([int(i)])!r} {float(p):.2f}" for p, i in zip(top5.values, top5.indices)))
generator = torch.Generator().manual_seed(0)
draws = {name: {pick_token(logits, cfg, generator) for _ in range(DRAWS)} for name, cfg in {
    "top-k 3": SamplingConfig(temperature=1.0, top_k=3),
    "top-p 0.5": SamplingConfig(temperature=1.0, top_p=0.5),
    "temperature 1.5": SamplingConfig(temperature=1.5),
}.items()}
for name, seen in draws.items():
    show(f"distinct tokens in {DRAWS} draws, {name}", len(seen))
check("top-k 3 never leaves the 3 best tokens", draws["top-k 3"] <= set(torch.topk(logits, 3).indices.tolist()))
check("a flatter distribution gives more variety", len(draws["temperature 1.5"]) > len(draws["top-p 0.5"]))
penalised = apply_penalties(logits, SamplingConfig(repetition_penalty=1.5), prompt[0].tolist(), {})
check("a repetition penalty lowers tokens from the prompt", bool((penalised[prompt[0]] <= logits[prompt[0]]).all()))

# %% [markdown]
# ## 6. The engine: same greedy tokens, several requests per step
# `Engine` runs its own lean decode loop over a slot KV cache and samples per
# request. Greedy decoding must match the by-hand loop token for token.

# %%
section("6. The project's engine")
engine = Engine(loaded, max_batch=4)
result = engine.generate(messages, SamplingConfig(max_new_tokens=len(tokens), temperature=0.0))
check("engine greedy == by-hand greedy", result.token_ids == tokens, repr(result.text))
strategies = {
    "greedy": SamplingConfig(max_new_tokens=NEW_TOKENS, temperature=0.0),
    "temperature 0.7, seed 1": SamplingConfig(max_new_tokens=NEW_TOKENS, temperature=0.7, seed=1),
    "top-p 0.9, seed 1": SamplingConfig(max_new_tokens=NEW_TOKENS, temperature=1.0, top_p=0.9, seed=1),
    "top-k 20, temperature 1.2, seed 2": SamplingConfig(max_new_tokens=NEW_TOKENS, temperature=1.2, top_k=20, seed=2),
}
steps_before = engine.steps
start = time.perf_counter()
requests = {name: engine.submit(messages, cfg) for name, cfg in strategies.items()}  # all four decode together
replies = {name: request.result() for name, request in requests.items()}
batch_seconds = time.perf_counter() - start
for name, reply in replies.items():
    show(name, repr(reply.text))
total = sum(r.usage.completion_tokens for r in replies.values())
check("four requests shared decode steps (continuous batching)", engine.steps - steps_before < total,
      f"{engine.steps - steps_before} steps for {total} tokens, {total / batch_seconds:.1f} tokens/s together")
again = engine.generate(messages, strategies["temperature 0.7, seed 1"])
check("the same seed gives the same sample", again.token_ids == replies["temperature 0.7, seed 1"].token_ids)
engine.close()
done()
