"""Export a TinyGPT to a Hugging Face folder of a standard architecture.

The `llama` flavor becomes `LlamaForCausalLM`, the `gpt2` flavor
`GPT2LMHeadModel`. The weights are a rename, plus two mechanical changes:
the fused `qkv_proj` and `gate_up_proj` are split for Llama, and GPT-2 stores its
linear layers as `Conv1D` (weight transposed: in × out). The tokenizer is
rebuilt in `tokenizers` (byte-level BPE, or a char vocab with byte fallback)
so `AutoTokenizer.from_pretrained` gives the same ids as ours.

After export the folder is an ordinary model: `load_model(folder)`, the
server, evals and LoRA take it like any other. `logits_parity` proves it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import UserError

# A plain chat template (the model is not chat-trained; this keeps chat-based tools working).
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
)
MARKER = "llm_deeper_tinygpt.json"


def hf_config(model, eos: int | None = None):
    """The transformers config with the same shapes as a TinyGPT (`eos`: end-of-text id, if any)."""
    c = model.config
    if c.flavor == "llama":
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=c.vocab_size, hidden_size=c.n_embd, intermediate_size=c.mlp_hidden,
            num_hidden_layers=c.n_layer, num_attention_heads=c.n_head, num_key_value_heads=c.n_head,
            max_position_embeddings=c.context, rms_norm_eps=c.norm_eps, rope_theta=c.rope_theta,
            tie_word_embeddings=c.tie_embeddings, attention_bias=c.bias, mlp_bias=c.bias, hidden_act="silu",
            bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
        )
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=c.vocab_size, n_positions=c.context, n_embd=c.n_embd, n_layer=c.n_layer, n_head=c.n_head,
        n_inner=c.mlp_hidden, activation_function="gelu", layer_norm_epsilon=c.norm_eps,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=c.tie_embeddings,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
    )


def llama_state_dict(model) -> dict[str, torch.Tensor]:
    """TinyGPT names → LlamaForCausalLM names (split q, k, v and gate, up)."""
    c, sd, out = model.config, model.state_dict(), {}
    out["model.embed_tokens.weight"] = sd["embed_tokens.weight"]
    for i in range(c.n_layer):
        src, dst = f"layers.{i}.", f"model.layers.{i}."
        for kind in ("weight", "bias") if c.bias else ("weight",):
            q, k, v = sd[src + f"self_attn.qkv_proj.{kind}"].chunk(3, dim=0)
            out[dst + f"self_attn.q_proj.{kind}"], out[dst + f"self_attn.k_proj.{kind}"], out[dst + f"self_attn.v_proj.{kind}"] = q, k, v
            gate, up = sd[src + f"mlp.gate_up_proj.{kind}"].chunk(2, dim=0)
            out[dst + f"mlp.gate_proj.{kind}"], out[dst + f"mlp.up_proj.{kind}"] = gate, up
            for name in ("self_attn.o_proj", "mlp.down_proj"):
                out[dst + f"{name}.{kind}"] = sd[src + f"{name}.{kind}"]
        for name in ("input_layernorm", "post_attention_layernorm"):
            out[dst + f"{name}.weight"] = sd[src + f"{name}.weight"]
    out["model.norm.weight"] = sd["norm.weight"]
    out["lm_head.weight"] = sd["lm_head.weight"]
    return out


def gpt2_state_dict(model) -> dict[str, torch.Tensor]:
    """TinyGPT names → GPT2LMHeadModel names (Conv1D weights are transposed; absent biases are zeros)."""
    c, sd, out = model.config, model.state_dict(), {}

    def bias(key: str, size: int) -> torch.Tensor:
        return sd[key] if key in sd else torch.zeros(size)

    out["transformer.wte.weight"] = sd["embed_tokens.weight"]
    out["transformer.wpe.weight"] = sd["embed_positions.weight"]
    for i in range(c.n_layer):
        src, dst = f"layers.{i}.", f"transformer.h.{i}."
        pairs = [("self_attn.qkv_proj", "attn.c_attn"), ("self_attn.o_proj", "attn.c_proj"), ("mlp.up_proj", "mlp.c_fc"), ("mlp.down_proj", "mlp.c_proj")]
        for ours, theirs in pairs:
            weight = sd[src + ours + ".weight"]
            out[dst + theirs + ".weight"] = weight.t().contiguous()
            out[dst + theirs + ".bias"] = bias(src + ours + ".bias", weight.shape[0])
        for ours, theirs in (("input_layernorm", "ln_1"), ("post_attention_layernorm", "ln_2")):
            out[dst + theirs + ".weight"] = sd[src + ours + ".weight"]
            out[dst + theirs + ".bias"] = bias(src + ours + ".bias", c.n_embd)
    out["transformer.ln_f.weight"] = sd["norm.weight"]
    out["transformer.ln_f.bias"] = bias("norm.bias", c.n_embd)
    out["lm_head.weight"] = sd["lm_head.weight"]
    return out


def hf_tokenizer(tokenizer):
    """Our tokenizer rebuilt as a `PreTrainedTokenizerFast` that encodes to the same ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if tokenizer.kind == "bpe":
        vocab, merges = tokenizer.vocab_and_merges()
        backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        backend.decoder = decoders.ByteLevel()
    else:
        # A BPE with no merges is a char vocabulary; byte_fallback spells unseen characters as <0xNN>.
        vocab = dict(tokenizer.token_to_id)
        backend = Tokenizer(models.BPE(vocab=vocab, merges=[], byte_fallback=tokenizer.byte_fallback))
        backend.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    backend.add_special_tokens(tokenizer.special_tokens)
    eos = tokenizer.special_tokens[0] if tokenizer.special_tokens else None
    wrapped = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=eos, bos_token=eos, pad_token=eos, unk_token=None)
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def export_hf(model, tokenizer, out_dir: str | Path, source: dict | None = None) -> Path:
    """Write safetensors + config + tokenizer to `out_dir`; return the folder."""
    from transformers import AutoModelForCausalLM

    from ..models.embedded import write_portable_config
    from ..models.loaders import quiet_transformers

    quiet_transformers()
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise UserError(f"{out_dir} exists and is not an earlier TinyGPT export: pick an empty or new --out folder")
    config = hf_config(model, tokenizer.eos_id)
    hf_model = AutoModelForCausalLM.from_config(config)
    state = llama_state_dict(model) if model.config.flavor == "llama" else gpt2_state_dict(model)
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and model.config.tie_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"export mapping is incomplete: missing {missing}, unexpected {unexpected}")
    if tokenizer.eos_id is not None:
        hf_model.generation_config.eos_token_id = tokenizer.eos_id
        hf_model.generation_config.pad_token_id = tokenizer.eos_id
    out_dir.mkdir(parents=True, exist_ok=True)
    hf_model.save_pretrained(out_dir, safe_serialization=True)
    hf_tokenizer(tokenizer).save_pretrained(out_dir)
    write_portable_config(out_dir)
    (out_dir / MARKER).write_text(json.dumps({"tinygpt_config": model.config.to_dict(), "tokenizer": tokenizer.kind, **(source or {})}, indent=2) + "\n")
    return out_dir


def logits_parity(model, folder: str | Path, ids: list[int]) -> float:
    """max |ours − transformers| over the logits of `ids`, loaded back through `load_model`."""
    from ..models.loaders import load_model

    loaded = load_model(str(folder))
    x = torch.tensor([ids], dtype=torch.long)
    with torch.inference_mode():
        ours, _ = model.eval()(x)
        theirs = loaded.model(x).logits
    return (ours - theirs).abs().max().item()
