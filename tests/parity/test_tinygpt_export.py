"""TinyGPT → HF folder: transformers' logits, tokens and generations equal ours."""

from __future__ import annotations

import pytest
import torch

from llm_deeper.convert.tinygpt_export import export_hf, logits_parity
from llm_deeper.data.corpus import EOS
from llm_deeper.scratch.bpe import BPETokenizer
from llm_deeper.scratch.char_tokenizer import CharTokenizer
from llm_deeper.scratch.tinygpt import TinyGPT, TinyGPTConfig
from llm_deeper.scratch.tinygpt_sampling import generate

TEXT = "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    return a + b\n" * 30


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def trained_like(flavor: str, vocab: int, bias: bool = False, tie: bool = True) -> TinyGPT:
    """A random TinyGPT whose norms and biases are not at their init values (so a mix-up shows)."""
    torch.manual_seed(0)
    model = TinyGPT(TinyGPTConfig(vocab_size=vocab, context=32, n_layer=2, n_head=2, n_embd=32, flavor=flavor, bias=bias, tie_embeddings=tie))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


@pytest.mark.parametrize("flavor,bias,tie", [("llama", False, True), ("gpt2", False, True), ("llama", True, False), ("gpt2", True, False)])
def test_logits_equal_automodel(tmp_path, flavor, bias, tie):
    from transformers import AutoModelForCausalLM

    tok = BPETokenizer.train(TEXT, 300, [EOS])
    model = trained_like(flavor, tok.vocab_size, bias, tie)
    folder = export_hf(model, tok, tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    assert hf.config.model_type == ("llama" if flavor == "llama" else "gpt2")
    ids = torch.tensor([tok.encode(TEXT)[:32]])
    with torch.inference_mode():
        diff = (model(ids)[0] - hf(ids).logits).abs().max().item()
    assert diff < 1e-4
    # The check can fail: a different model gives different logits.
    other = trained_like(flavor, tok.vocab_size, bias, tie)
    with torch.no_grad():
        other.norm.weight.mul_(1.5)
    with torch.inference_mode():
        assert (other(ids)[0] - hf(ids).logits).abs().max().item() > 1e-2


def test_export_loads_through_load_model_with_tokenizer_and_generation(tmp_path):
    import json

    from llm_deeper.models.loaders import load_model

    tok = BPETokenizer.train(TEXT, 300, [EOS])
    model = trained_like("llama", tok.vocab_size)
    folder = export_hf(model, tok, tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    assert config["rope_theta"] == model.config.rope_theta  # top-level, for readers like mlx-lm
    loaded = load_model(str(folder))
    prompt = tok.encode("def add(a, b):")
    assert loaded.tokenizer("def add(a, b):", add_special_tokens=False)["input_ids"] == prompt
    assert logits_parity(model, folder, prompt) < 1e-4
    ours = generate(model, prompt, 12, temperature=0)
    with torch.inference_mode():
        theirs = loaded.model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False, eos_token_id=None)
    assert theirs[0, len(prompt):].tolist() == ours.tokens
    assert loaded.tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False).endswith("assistant: ")


def test_char_tokenizer_export_round_trips(tmp_path):
    from transformers import AutoTokenizer

    tok = CharTokenizer.train(TEXT, special_tokens=[EOS])
    model = trained_like("gpt2", tok.vocab_size)
    folder = export_hf(model, tok, tmp_path / "hf")
    hf_tok = AutoTokenizer.from_pretrained(folder)
    text = f"return a + b ☃{EOS}def"
    assert hf_tok(text, add_special_tokens=False)["input_ids"] == tok.encode(text)
    assert hf_tok.decode(tok.encode(text)) == text
    assert logits_parity(model, folder, tok.encode(text)) < 1e-4


def test_export_refuses_a_foreign_nonempty_folder(tmp_path):
    from llm_deeper.errors import UserError

    (tmp_path / "notes.txt").write_text("mine")
    tok = CharTokenizer.train(TEXT)
    with pytest.raises(UserError, match="not an earlier TinyGPT export"):
        export_hf(trained_like("llama", tok.vocab_size), tok, tmp_path)
