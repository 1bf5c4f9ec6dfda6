"""Train a TinyGPT from scratch on stdlib docstrings, sample from it, export it to transformers."""

from __future__ import annotations

from ..core import Context, StageResult

TITLE = "TinyGPT from scratch"
PROMPT = "Return the"
PARITY_TOLERANCE = 1e-4


def run(ctx: Context) -> StageResult:
    import math

    from ...convert.tinygpt_export import export_hf, logits_parity
    from ...data.corpus import fingerprint
    from ...scratch.tinygpt import TinyGPTConfig
    from ...scratch.tinygpt_sampling import generate
    from ...train.tinygpt.config import TrainConfig
    from ...train.tinygpt.pretrain import train
    from ...train.tinygpt.text import prepare

    if ctx.quick:  # ~15 s: proves the path (tokenizer, loop, sampling, export), not the quality
        vocab, context, shape, steps, batch, max_chars, threads = 300, 64, dict(n_layer=2, n_head=2, n_embd=64), 30, 8, 150_000, 1
    else:  # a couple of minutes on 2 CPU cores
        vocab, context, shape, steps, batch, max_chars, threads = 512, 128, dict(n_layer=4, n_head=4, n_embd=128), 400, 16, None, 0
    ctx.log("building the stdlib-docstring corpus and training a byte-level BPE")
    corpus, tok, data = prepare(None, "bpe", vocab, context, max_chars=max_chars)
    model_config = TinyGPTConfig(vocab_size=tok.vocab_size, context=context, **shape)
    cfg = TrainConfig(steps=steps, batch_size=batch, warmup_steps=min(50, steps // 5), lr=2e-3, min_lr=2e-4,
                      eval_every=max(1, steps // 5), eval_batches=10, checkpoint_every=steps // 2, seed=ctx.seed, threads=threads)
    out = ctx.run_dir / "tinygpt"
    ctx.log(f"training {steps} steps on {data.train.numel():,} tokens")
    result = train(model_config, cfg, data, tok, out, data_fingerprint=fingerprint(corpus.train), show_progress=False, log=ctx.log)
    model = result.model

    prompt_ids = tok.encode(PROMPT)
    greedy = generate(model, prompt_ids, 40, temperature=0, eos_id=tok.eos_id)
    sampled = generate(model, prompt_ids, 40, temperature=0.8, top_p=0.95, eos_id=tok.eos_id, seed=ctx.seed)
    plain = generate(model, prompt_ids, 40, temperature=0, eos_id=tok.eos_id, use_cache=False)

    folder = export_hf(model, tok, out / "hf", {"run": str(out)})
    probe = data.val[:context].tolist()
    diff = logits_parity(model, folder, probe)
    ctx.state["tinygpt_folder"] = folder  # later stages may load it like any model

    chance = math.log(tok.vocab_size)
    val = result.eval_losses[-1][1]
    learned = val < chance - (0.5 if ctx.quick else 2.0)
    ok = learned and diff < PARITY_TOLERANCE and greedy.tokens == plain.tokens
    text = lambda g: tok.decode([t for t in g.tokens if t != tok.eos_id])  # noqa: E731
    return StageResult(
        headline=f"{model.num_parameters() / 1e6:.2f} M params, val loss {chance:.2f} → {val:.3f} in {steps} steps "
                 f"({result.tokens_per_s:,.0f} tok/s); export vs transformers: max Δlogit {diff:.1e}",
        metrics={
            "corpus": f"{corpus.name}, {corpus.chars:,} chars, {corpus.documents} documents",
            "tokenizer": f"byte-level BPE, vocab {tok.vocab_size}",
            "model": f"{model_config.flavor}: {model_config.n_layer} layers, {model_config.n_head} heads, width {model_config.n_embd}, context {context}",
            "parameters": f"{model.num_parameters():,}",
            "loss at chance (ln vocab)": round(chance, 3),
            "final train loss": round(result.train_losses[-1], 3),
            "val loss": " → ".join(f"{v:.3f}@{s}" for s, v in result.eval_losses),
            "training tokens/s": round(result.tokens_per_s),
            "greedy sample (KV cache == no cache)": f"{greedy.tokens == plain.tokens}",
            "export": f"{folder} ({'LlamaForCausalLM' if model_config.flavor == 'llama' else 'GPT2LMHeadModel'})",
            "export max abs logit diff": f"{diff:.2e}",
            "loss curve": result.plot,
        },
        ok=ok,
        details=f"Greedy from {PROMPT!r}:\n\n```\n{PROMPT}{text(greedy)}\n```\n\nSampled (T=0.8, top-p 0.95):\n\n```\n{PROMPT}{text(sampled)}\n```",
    )
