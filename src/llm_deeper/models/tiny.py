"""Tiny random-weight models of the default architectures, for fast tests.

Each factory returns a real transformers model (same code paths as the default
model) small enough to run in milliseconds on a CPU. `tiny_tokenizer` is a
byte-level tokenizer with the default model's ChatML special tokens and chat
template, so chat, server and fine-tuning code run end to end without weights.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Same special tokens, in the same order (ids 0, 1, 2), as SmolLM2.
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def tiny_tokenizer():
    """A byte-level tokenizer: 3 specials + 256 bytes + a few merges; vocab 259+."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_vocab = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in sorted(byte_vocab):
        vocab[ch] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|im_end|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def tiny_llama(vocab_size: int = 259, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
               intermediate: int = 128, context: int = 512, seed: int = 0, tie_embeddings: bool = True):
    """A random Llama (the default model's architecture: RMSNorm, RoPE, GQA, SwiGLU)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=context, tie_word_embeddings=tie_embeddings,
        bos_token_id=1, eos_token_id=2, pad_token_id=2, rope_theta=100000.0,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def tiny_gpt2(vocab_size: int = 259, hidden: int = 64, layers: int = 2, heads: int = 4, context: int = 256, seed: int = 0):
    """A random GPT-2 (learned positions, LayerNorm, GELU MLP, tied embeddings)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size, n_embd=hidden, n_layer=layers, n_head=heads, n_positions=context,
        bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).eval()


def save_tiny_model(folder: str | Path, arch: str = "llama", seed: int = 0, **kwargs) -> Path:
    """Write a tiny random model + tokenizer as an HF folder any `--model` accepts."""
    from .embedded import write_portable_config

    folder = Path(folder)
    factory = {"llama": tiny_llama, "gpt2": tiny_gpt2}.get(arch)
    if factory is None:
        raise ValueError(f"unknown tiny architecture {arch!r}: use 'llama' or 'gpt2'")
    model = factory(seed=seed, **kwargs)
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 2
    model.save_pretrained(folder, safe_serialization=True)
    tiny_tokenizer().save_pretrained(folder)
    write_portable_config(folder)
    return folder
