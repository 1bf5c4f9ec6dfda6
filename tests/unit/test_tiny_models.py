"""Tiny random models are real transformers models that save, load and chat."""

import torch

from llm_deeper.models.inspect import count_parameters, describe, tool_support
from llm_deeper.models.loaders import load_model
from llm_deeper.models.tiny import SPECIAL_TOKENS, tiny_gpt2, tiny_llama, tiny_tokenizer


def test_tokenizer_round_trips_unicode_and_keeps_chatml_ids():
    tok = tiny_tokenizer()
    text = "héllo 世界 👋 tabs\tand\nnewlines"
    assert tok.decode(tok(text)["input_ids"]) == text
    assert tok.convert_tokens_to_ids(SPECIAL_TOKENS) == [0, 1, 2]
    assert tok.eos_token_id == 2
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_factories_are_seeded_and_run():
    a, b = tiny_llama(seed=3), tiny_llama(seed=3)
    ids = torch.tensor([[1, 50, 60, 70]])
    with torch.no_grad():
        assert torch.equal(a(ids).logits, b(ids).logits)
        assert tiny_gpt2()(ids).logits.shape == (1, 4, 259)
    assert not torch.equal(tiny_llama(seed=4).model.embed_tokens.weight, a.model.embed_tokens.weight)


def test_saved_tiny_folder_loads_like_any_model(tiny_llama_dir):
    loaded = load_model(str(tiny_llama_dir))
    facts = describe(loaded)
    assert facts["architecture"] == "LlamaForCausalLM"
    # Tied embeddings are one tensor: counted once.
    model = loaded.model
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    assert count_parameters(model) < sum(t.numel() for t in model.state_dict().values())
    assert facts["chat template"] == "yes"
    assert "hermes" in tool_support(loaded.tokenizer)


def test_bf16_load_is_explicit(tiny_llama_dir):
    loaded = load_model(str(tiny_llama_dir), dtype="bfloat16")
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
