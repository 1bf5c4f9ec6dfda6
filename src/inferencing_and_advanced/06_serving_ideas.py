"""How fast servers work, by running the ideas: FlashAttention, PagedAttention, prefix caching, continuous batching, speculative decoding

You will learn:
- FlashAttention's tiling and online softmax: attention computed one small tile of scores at a
  time, never the whole score matrix, equal to PyTorch's `scaled_dot_product_attention`;
- PagedAttention: the KV cache in fixed-size blocks with a block table per request, so memory
  follows what requests really hold instead of their maximum length;
- prefix caching: requests that start the same way (system prompt, tool schemas) share the
  cached blocks of that prefix and skip its prefill;
- continuous batching: refilling a finished request's row at the next step, counted against
  static batching;
- speculative decoding: a cheap draft guesses, the model checks all guesses in one pass; the
  output equals greedy decoding, in fewer passes of the big model.

Each idea is a small module in `llm_deeper/scratch/` (flash_attention, paged_kv, batching,
speculative), tested against its reference in tests/parity/test_serving_scratch.py.

Run:   python src/inferencing_and_advanced/06_serving_ideas.py   (or: llm-deeper lessons run inferencing_and_advanced/06)
Takes: about 30 s on 2 CPU cores (--quick: fewer tokens to decode).
"""

# %%
import time

import numpy as np
import torch

from llm_deeper.lesson import check, close, done, is_quick, section, show

QUICK = is_quick()
rng = np.random.default_rng(0)
if QUICK:
    torch.set_num_threads(1)  # small forward passes: one thread avoids OpenMP contention on a busy machine

# %% [markdown]
# ## 1. FlashAttention: tiles and an online softmax
# Plain attention materializes an (n × n) score matrix. FlashAttention walks over tiles of
# keys, keeping per query row a running max m, a running sum l of exp(score − m) and an
# unnormalized output o; a new tile with a larger max rescales l and o by exp(m_old − m_new).
# At the end o / l is exactly the softmax-weighted sum. On a GPU the point is memory traffic:
# tiles stay in fast on-chip memory. Here the point is the arithmetic, which is the same.

# %%
from llm_deeper.scratch.attention import causal_mask, logsumexp
from llm_deeper.scratch.flash_attention import OnlineSoftmax, flash_attention

section("1. FlashAttention's online softmax, in numpy")
scores = rng.normal(size=(1, 96)) * 5
state = OnlineSoftmax.empty(1, 1)
for start in range(0, 96, 32):  # three chunks, as if the keys arrived in tiles
    state.add(scores[:, start:start + 32], np.ones((32, 1)))
check("the running max and rescaled sum give the full row's log-sum-exp", abs(state.m[0] + np.log(state.l[0]) - logsumexp(scores[0])) < 1e-12)
n, d, block = 256, 64, 32
q, k, v = (rng.normal(size=(n, d)) for _ in range(3))
for causal in (False, True):
    out, stats = flash_attention(q, k, v, causal=causal, block_q=block, block_k=block)
    ref = torch.nn.functional.scaled_dot_product_attention(*(torch.from_numpy(x) for x in (q, k, v)), is_causal=causal).numpy()
    ok, detail = close(out, ref, atol=1e-12)
    check(f"{'causal' if causal else 'full'}: tiled attention equals scaled_dot_product_attention (fp64)", ok, detail)
    show("tiles computed / skipped (wholly in the causal future)", f"{stats.tiles_computed} / {stats.tiles_skipped}")
check(f"the largest score block alive is {block}×{block} = {block * block:,}, against {n}×{n} = {n * n:,} for plain attention",
      stats.largest_scores == block * block)
check("a causal pass skips the tiles above the diagonal: (8·7)/2 = 28 of 64", stats.tiles_skipped == 28)

# %% [markdown]
# ## 2. PagedAttention: the KV cache in blocks
# A contiguous cache reserves the maximum length for every request. A paged cache hands out
# 16-token blocks as a request grows and reads keys through the request's block table.

# %%
from llm_deeper.sizing import KNOWN
from llm_deeper.scratch.paged_kv import PagedKVCache, paged_attention

section("2. PagedAttention's block table")
arch = KNOWN["smollm2-135m"]
BLOCK = 16
cache = PagedKVCache(num_blocks=64, block_size=BLOCK, kv_heads=arch.kv_heads, head_dim=arch.hd)
lengths = {"short answer": 21, "tool call": 58, "long answer": 230, "greeting": 7}
written = {}
for seq, length in lengths.items():
    cache.add_sequence(seq, [])
    kv = rng.normal(size=(2, length, arch.kv_heads, arch.hd))
    cache.append(seq, list(range(length)), kv[0], kv[1])
    written[seq] = kv
    show(f"{seq} ({length} tokens)", f"blocks {cache.tables[seq]}")
per_token = 2 * arch.kv_heads * arch.hd * 2  # one layer, K and V, fp16
reserved = len(lengths) * arch.context * per_token
paged = cache.blocks_in_use() * BLOCK * per_token
show("one layer, fp16: contiguous at max length vs paged", f"{reserved / 2**20:.1f} MiB vs {paged / 2**10:.0f} KiB")
check("paged memory is at most one partly filled block per request above what they hold",
      cache.blocks_in_use() * BLOCK - sum(lengths.values()) < len(lengths) * BLOCK)
keys, values = cache.gather("long answer")
check("reading through the block table gives back exactly what was written", np.array_equal(keys, written["long answer"][0]))
query = rng.normal(size=(arch.heads, arch.hd))
group = arch.heads // arch.kv_heads
contiguous = torch.nn.functional.scaled_dot_product_attention(
    torch.from_numpy(query)[:, None, :], *(torch.from_numpy(np.repeat(x, group, axis=1)).transpose(0, 1) for x in written["long answer"]))[:, 0]
ok, detail = close(paged_attention(query, cache, "long answer"), contiguous, atol=1e-12)
check("one decode step's attention over the pages equals attention over a contiguous cache (GQA, 9 heads on 3)", ok, detail)

# %% [markdown]
# ## 3. Prefix caching
# Every request to a tool-calling server starts with the same system prompt and tool schemas.
# A full block is named by a hash of its tokens and everything before it, so a later request
# finds the blocks of its prefix already in the cache and skips their prefill.

# %%
from llm_deeper.chat_format import prompt_ids
from llm_deeper.models.loaders import load_model
from llm_deeper.tools.builtin import default_registry

section("3. Prefix caching on real prompts")
loaded = load_model("smollm2-135m-instruct")
tokenizer = loaded.tokenizer
tools = default_registry().schemas()[:3]
prompts = {name: prompt_ids(tokenizer, [{"role": "user", "content": text}], tools=tools) for name, text in
           (("first", "What is the weather in Paris?"), ("second", "Convert 12 miles to kilometres."))}
shared = next(i for i, (a, b) in enumerate(zip(*prompts.values())) if a != b)
show("prompt tokens (first, second)", f"{len(prompts['first'])}, {len(prompts['second'])}; the first {shared} are the same")
cache = PagedKVCache(num_blocks=128, block_size=BLOCK, kv_heads=1, head_dim=4)
for seq, ids in prompts.items():
    reused = cache.add_sequence(seq, ids)
    cache.append(seq, ids[reused:], np.zeros((len(ids) - reused, 1, 4)), np.zeros((len(ids) - reused, 1, 4)))
    show(f"{seq}: tokens found in the cache", f"{reused} of {len(ids)} ({reused / len(ids):.0%} of its prefill skipped)")
check("the second request reuses every full block of the shared prefix", reused == shared // BLOCK * BLOCK)
check("the shared blocks are stored once", cache.blocks_in_use() == -(-len(prompts["first"]) // BLOCK) + -(-len(prompts["second"]) // BLOCK) - shared // BLOCK)

# The project's engine does the same (`inference/prefix_cache.py`, on by default): 16-token blocks
# named by their tokens and everything before them. Its slot cache stays contiguous, so a hit
# copies the blocks into the request's slot; the usage of each reply says how many were reused.
from llm_deeper.inference.engine import Engine  # noqa: E402
from llm_deeper.inference.sampling import SamplingConfig  # noqa: E402

with Engine(loaded, max_batch=2) as engine:
    usage = {seq: engine.generate(ids, SamplingConfig(max_new_tokens=1)).usage for seq, ids in prompts.items()}
for seq, u in usage.items():
    show(f"engine, {seq}: usage.prompt_tokens_details.cached_tokens", f"{u.cached_tokens} of {u.prompt_tokens}")
check("the engine's prefix cache reuses the same full blocks as ours", usage["second"].cached_tokens == reused and usage["first"].cached_tokens == 0)

# %% [markdown]
# ## 4. Continuous batching, counted in steps
# A decode step costs about the same for 1 row as for 8, so what matters is how many steps the
# batch runs and how many of its rows do useful work.

# %%
from llm_deeper.scratch.batching import continuous_batching, static_batching

section("4. Static vs continuous batching")
reply_lengths = [200, 12, 30, 8, 150, 40, 9, 64, 20, 180, 16, 33]  # one long answer among short tool calls
static, continuous = static_batching(reply_lengths, 4), continuous_batching(reply_lengths, 4)
for name, plan in (("static", static), ("continuous", continuous)):
    show(name, f"{plan.steps} steps, rows busy {plan.utilization:.0%}, mean finish step {np.mean(plan.finished_at):.0f}")
check("both produce every token of every request", static.busy_rows == continuous.busy_rows == sum(reply_lengths))
check("continuous batching needs fewer decode steps", continuous.steps < static.steps, f"{static.steps / continuous.steps:.2f}× fewer")
check("short requests finish sooner: they never wait for a long one's batch", np.mean(continuous.finished_at) < np.mean(static.finished_at))

# %% [markdown]
# ## 5. Speculative decoding
# The target model checks k guesses in one forward pass. Two drafts: the first 10 of the
# model's 30 layers (plus its final norm and head: "early exit"), and prompt lookup, which
# guesses that the reply repeats the prompt. Greedy acceptance keeps the output identical.

# %%
import copy

from llm_deeper.scratch.speculative import greedy_decode, prompt_lookup_draft, speculative_greedy

section("5. Speculative decoding on the default model")
model = loaded.model


def forward(m):
    def logits(ids: list[int]) -> np.ndarray:
        with torch.inference_mode():
            return m(torch.tensor([ids]), use_cache=False).logits[0].float().numpy()
    return logits


def first_layers(m, n: int):
    """The same model cut after its first n layers, sharing every weight (final norm and head included)."""
    body = copy.copy(m.model)
    body._modules = dict(m.model._modules)  # a copy's own module table: the original keeps its 30 layers
    body.layers = m.model.layers[:n]
    cut = copy.copy(m)
    cut._modules = dict(m._modules)
    cut.model = body
    return cut


target = forward(model)
early_draft = forward(first_layers(model, 10))
check("the draft is a 10-layer cut; the target keeps all 30", len(model.model.layers) == 30)
# Plain text, no chat template: a reply that copies its prompt, the case prompt lookup is made for
# (quoting, editing code, filling in a schema).
text = "Fruit: apples, pears, plums, cherries, lemons, figs, grapes.\nThe same fruit again: apples,"
prompt = tokenizer(text)["input_ids"]
NEW = 8 if QUICK else 24
start = time.perf_counter()
reference = greedy_decode(target, prompt, NEW)
plain_seconds = time.perf_counter() - start
show("greedy reply", repr(tokenizer.decode(reference)))
layer_share = 10 / 30  # a draft pass reads about a third of the layers' weights
for name, draft in (("early exit, 10 of 30 layers", lambda ids: int(np.argmax(early_draft(ids)[-1]))), ("prompt lookup, 2-grams", prompt_lookup_draft(2))):
    start = time.perf_counter()
    tokens, stats = speculative_greedy(target, draft, prompt, NEW, k=4)
    seconds = time.perf_counter() - start
    check(f"{name}: exactly the greedy tokens", tokens == reference)
    check(f"{name}: no more target passes than tokens", stats.target_passes <= NEW)
    cost = stats.target_passes + (stats.draft_passes * layer_share if name.startswith("early") else 0.0)
    show(f"{name}", f"acceptance {stats.acceptance_rate:.0%} ({stats.accepted}/{stats.proposed}), target passes {stats.target_passes} "
                    f"for {NEW} tokens, ≈ {NEW / cost:.2f}× fewer weight reads than greedy; wall time {seconds:.1f} s vs {plain_seconds:.1f} s (not asserted)")
print("  A draft pays only when the target agrees with it: a 10-layer cut of this small model rarely does (LayerSkip")
print("  trains models so that early layers can draft), while prompt lookup costs nothing and wins when the reply copies.")
print("  Sampling keeps the target's distribution too: accept a guess x with probability min(1, p(x)/q(x)), else")
print("  draw from max(0, p − q) renormalized (tests/parity/test_serving_scratch.py checks that the sum is exactly p).")

done()
