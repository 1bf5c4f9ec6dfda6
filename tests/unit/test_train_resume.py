"""Resume continues bit-exactly: same losses and weights as an uninterrupted run."""

from __future__ import annotations

import torch

from llm_deeper.data.corpus import Corpus
from llm_deeper.scratch.char_tokenizer import CharTokenizer
from llm_deeper.scratch.tinygpt import TinyGPTConfig
from llm_deeper.train.tinygpt.checkpoint import load_checkpoint
from llm_deeper.train.tinygpt.config import TrainConfig
from llm_deeper.train.tinygpt.pretrain import train
from llm_deeper.train.tinygpt.text import TokenData

TEXT = "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\n" * 40


def setup():
    corpus = Corpus("fox", TEXT[:3000], TEXT[3000:], 1)
    tok = CharTokenizer.train(corpus.train, byte_fallback=False)
    model_config = TinyGPTConfig(vocab_size=tok.vocab_size, context=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1)
    return model_config, tok, TokenData.encode(corpus, tok, 16)


def config(steps: int, **kw) -> TrainConfig:
    # decay_steps fixed at 8 so a run stopped at step 4 has the schedule of the full run.
    return TrainConfig(steps=steps, decay_steps=8, warmup_steps=2, batch_size=4, eval_every=4, eval_batches=2, threads=1, **kw)


def test_resume_matches_uninterrupted_run(tmp_path):
    model_config, tok, data = setup()
    full = train(model_config, config(8), data, tok, tmp_path / "full", show_progress=False)

    first = train(model_config, config(4), data, tok, tmp_path / "split", show_progress=False)  # "crash" after step 4
    assert load_checkpoint(tmp_path / "split")["step"] == 4
    second = train(model_config, config(8), data, tok, tmp_path / "split", resume=True, show_progress=False)

    assert second.start_step == 4
    assert first.train_losses == full.train_losses[:4]
    assert second.train_losses == full.train_losses  # bit-exact, dropout included
    assert second.eval_losses == full.eval_losses
    for (name, a), b in zip(full.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_checkpoint_every_n_steps_is_written_atomically(tmp_path):
    model_config, tok, data = setup()
    result = train(model_config, config(8, checkpoint_every=3), data, tok, tmp_path, show_progress=False)
    assert load_checkpoint(result.checkpoint)["step"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "loss.png"]  # no temp files left behind
    assert (tmp_path / "loss.png").stat().st_size > 5_000
