"""TinyGPT from scratch: tokenize, build, train, sample and export a small GPT

You will learn:
- where the text comes from (Python's own docstrings, no download) and why validation
  text must be held out;
- two tokenizers trained from scratch: characters (with a byte fallback) and byte-level
  BPE, and that our BPE gives the same ids as Hugging Face `tokenizers`;
- the model: embeddings, RoPE attention, RMSNorm, SwiGLU, pre-LN blocks, weight tying,
  and why an untrained model's loss is ln(vocab size);
- a short training run (AdamW, warmup + cosine, clipping), with its loss curve;
- sampling (temperature, top-p) before and after training, and that a KV cache changes
  the speed, not the tokens;
- export to a standard `LlamaForCausalLM` folder that transformers loads with equal logits.

Run:   python src/hfcore/00_tinygpt.py          (or: llm-deeper lessons run hfcore/00)
Takes: about a minute on 2 idle CPU cores (under 2 minutes on a busy one); --quick (or LLM_DEEPER_QUICK=1): ~15 s.
Then:  llm-deeper tinygpt train / sample / export does the same from the command line.
"""

# %%
import math
import time

import torch

from llm_deeper.lesson import check, close, done, is_quick, logits_tolerance, output_dir, saved, section, show

QUICK = is_quick()
OUT = output_dir("hfcore_00_tinygpt")
if QUICK:
    torch.set_num_threads(1)  # tiny settings: one thread avoids thread contention on a busy machine

# %% [markdown]
# ## 1. A corpus that is already on your machine
# Every module, class and function docstring of the Python standard library, read
# from source with `ast` in sorted file order: the same text on every machine with
# the same Python. Every 10th docstring is held out for validation.

# %%
from llm_deeper.data.corpus import EOS, default_corpus

section("1. The corpus: stdlib docstrings")
corpus = default_corpus(max_chars=200_000 if QUICK else 800_000)
show("documents", corpus.documents)
show("characters (train / val)", f"{len(corpus.train):,} / {len(corpus.val):,}")
show("first document", repr(corpus.train[:90]) + "…")
train_docs, val_docs = set(corpus.train.split(EOS)) - {""}, set(corpus.val.split(EOS)) - {""}
check("no validation docstring appears in the training text", not train_docs & val_docs)

# %% [markdown]
# ## 2. Tokenizers, trained from scratch
# A character tokenizer needs no training beyond listing the characters; unseen ones
# become their UTF-8 bytes. A byte-level BPE starts from the 256 bytes and repeatedly
# merges the most frequent adjacent pair; fewer tokens per text means more text per
# context window.

# %%
from llm_deeper.convert.tinygpt_export import hf_tokenizer
from llm_deeper.scratch.bpe import BPETokenizer, pretokenize
from llm_deeper.scratch.char_tokenizer import CharTokenizer

section("2. Tokenizers")
sentence = "Return the number of items in a container. It's 2 times faster."
chars = CharTokenizer.train(corpus.train, special_tokens=[EOS])
start = time.perf_counter()
bpe = BPETokenizer.train(corpus.train, vocab_size=512, special_tokens=[EOS])
show("BPE training", f"{len(bpe.merges)} merges in {time.perf_counter() - start:.1f} s")
show("first merges", [bpe.decode(m) for m in ([a, b] for a, b in bpe.merges[:8])])
show("pre-tokens", pretokenize(sentence))
show("BPE tokens", [bpe.decode([i]) for i in bpe.encode(sentence)])
odd = sentence + " Ünïcödé ☃ 🐍"
for name, tok in (("char", chars), ("BPE", bpe)):
    check(f"{name}: decode(encode(s)) == s, unseen characters included", tok.decode(tok.encode(odd)) == odd)
sample_text = corpus.val[:20_000]
ratio = len(chars.encode(sample_text)) / len(bpe.encode(sample_text))
check("BPE needs fewer tokens than characters on held-out text", ratio > 1.5, f"{ratio:.2f}× fewer")
hf = hf_tokenizer(bpe)
check("Hugging Face `tokenizers` with our vocab + merges gives the same ids", hf(sample_text, add_special_tokens=False)["input_ids"] == bpe.encode(sample_text))

# %% [markdown]
# ## 3. The model
# Token embeddings → N pre-LN blocks (x + attention(norm(x)), then x + MLP(norm(x)))
# → final norm → logits through the *same* matrix as the embeddings (weight tying).
# Positions enter as rotations of queries and keys (RoPE), as in Llama.

# %%
from llm_deeper.scratch.tinygpt import TinyGPT, TinyGPTConfig

section("3. The model")
CONTEXT = 64 if QUICK else 128
config = TinyGPTConfig(vocab_size=bpe.vocab_size, context=CONTEXT, n_layer=2 if QUICK else 4, n_head=4, n_embd=64 if QUICK else 128)
torch.manual_seed(0)
model = TinyGPT(config)
show("config", config)
show("parameters", f"{model.num_parameters():,}")
d, L, V, H = config.n_embd, config.n_layer, config.vocab_size, config.mlp_hidden
by_hand = V * d + L * (3 * d * d + d * d + 3 * d * H + 2 * d) + d
check("parameter count = V·d + L·(4d² + 3·d·h + 2d) + d (tied head counted once)", by_hand == model.num_parameters())
ids = torch.tensor([bpe.encode(corpus.val[:4000])[:CONTEXT]])
logits, loss = model(ids[:, :-1], ids[:, 1:])
show("logits shape", tuple(logits.shape))
check("untrained loss ≈ ln(vocab): every token about equally likely", abs(loss.item() - math.log(V)) < 0.3,
      f"{loss.item():.3f} vs ln {V} = {math.log(V):.3f}")

# %% [markdown]
# ## 4. Samples before training

# %%
from llm_deeper.scratch.tinygpt_sampling import generate

section("4. Samples before training")
PROMPT = "Return the"
before = generate(model, bpe.encode(PROMPT), 30, temperature=0.8, top_p=0.95, seed=0)
show("sample", repr(PROMPT + bpe.decode(before.tokens)))

# %% [markdown]
# ## 5. Training
# AdamW (decay on matrices only), linear warmup then cosine decay, gradient clipping
# at 1.0, validation loss every few steps on the same held-out batches.

# %%
from llm_deeper.train.tinygpt.config import TrainConfig
from llm_deeper.train.tinygpt.pretrain import train
from llm_deeper.train.tinygpt.text import TokenData

section("5. Training")
data = TokenData.encode(corpus, bpe, CONTEXT)
steps = 40 if QUICK else 250
cfg = TrainConfig(steps=steps, batch_size=8 if QUICK else 16, warmup_steps=steps // 10, lr=2e-3, min_lr=2e-4,
                  eval_every=steps // 4, eval_batches=8, seed=0, threads=1 if QUICK else 0)  # 0: one thread per idle core
result = train(config, cfg, data, bpe, OUT / "run", show_progress=not QUICK)
model = result.model
show("validation loss by step", ", ".join(f"{s}: {v:.3f}" for s, v in result.eval_losses))
show("throughput", f"{result.tokens_per_s:,.0f} tokens/s")
saved(result.plot)
saved(result.checkpoint)
drop = math.log(V) - result.eval_losses[-1][1]
check("validation loss fell well below chance", drop > (0.5 if QUICK else 2.0), f"{drop:.2f} nats below ln(vocab)")
check("it kept falling after the first evaluation (a training outcome: seed 0 fixes it)", result.eval_losses[-1][1] < result.eval_losses[0][1])

# %% [markdown]
# ## 6. Samples after training, with and without the KV cache
# The cache keeps each layer's keys and values, so a new token costs one position's
# projections instead of re-running the whole sequence.

# %%
section("6. Samples after training")
after = generate(model, bpe.encode(PROMPT), 40, temperature=0.8, top_p=0.95, seed=0, eos_id=bpe.eos_id)
show("sampled (T=0.8, top-p 0.95)", repr(PROMPT + bpe.decode(after.tokens)))
t0 = time.perf_counter()
cached = generate(model, bpe.encode(PROMPT), 60, temperature=0, return_logits=True)
t1 = time.perf_counter()
plain = generate(model, bpe.encode(PROMPT), 60, temperature=0, return_logits=True, use_cache=False)
t2 = time.perf_counter()
show("greedy", repr(PROMPT + bpe.decode(cached.tokens)))
show("time with / without cache", f"{t1 - t0:.2f} s / {t2 - t1:.2f} s")
# Cached steps multiply other shapes than the full recompute: fp32 rounding through the layers is all we allow.
ok, detail = close(torch.stack(cached.logits), torch.stack(plain.logits), atol=logits_tolerance(torch.stack(plain.logits), config.n_embd, config.n_layer))
check("KV cache: same greedy tokens and logits as recomputing everything", cached.tokens == plain.tokens and ok, detail)

# %% [markdown]
# ## 7. Export to transformers
# The layer names were chosen so that export is a rename (plus splitting the fused
# q/k/v matrix). The folder loads with `AutoModelForCausalLM` and everything in this
# project that takes a model: `llm-deeper generate --model FOLDER`, the server, evals, LoRA.

# %%
from llm_deeper.convert.tinygpt_export import export_hf
from llm_deeper.models.loaders import load_model

section("7. Export to a Hugging Face folder")
folder = export_hf(model, bpe, OUT / "hf")
saved(folder)
loaded = load_model(str(folder))
show("architecture", type(loaded.model).__name__)
probe = bpe.encode(corpus.val[:2000])[:CONTEXT]
with torch.inference_mode():
    reference = loaded.model(torch.tensor([probe])).logits  # transformers' kernels vs ours: a different summation order
    ok, detail = close(model(torch.tensor([probe]))[0], reference, atol=logits_tolerance(reference, config.n_embd, config.n_layer))
check("transformers' logits equal TinyGPT's", ok, detail)
check("its tokenizer gives our ids", loaded.tokenizer(PROMPT, add_special_tokens=False)["input_ids"] == bpe.encode(PROMPT))

done()
