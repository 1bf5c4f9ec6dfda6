"""TinyGPT's tokenizers: round trips for any string, save/load, training rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_deeper.scratch.bpe import BPETokenizer, pretokenize
from llm_deeper.scratch.char_tokenizer import CharTokenizer

EOS = "<|endoftext|>"
TEXT = (
    "Return a new list containing all items from the iterable in ascending order.\n"
    "A custom key function can be supplied to customize the sort order, and the\n"
    "reverse flag can be set to request the result in descending order. It's 2026; naïve café!\n"
) * 20


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train(TEXT, vocab_size=300, special_tokens=[EOS])


@pytest.fixture(scope="module")
def chars() -> CharTokenizer:
    return CharTokenizer.train(TEXT, special_tokens=[EOS])


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_bpe_round_trips_any_string(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_char_round_trips_any_string_through_byte_fallback(chars, text):
    assert chars.decode(chars.encode(text)) == text


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=60))
def test_pretokenize_partitions_the_text(text):
    chunks = pretokenize(text)
    assert "".join(chunks) == text and all(chunks)


def test_bpe_learns_requested_merges_and_compresses(bpe):
    assert bpe.vocab_size == 300
    ids = bpe.encode(TEXT)
    assert len(ids) < 0.6 * len(TEXT.encode("utf-8"))  # 43 merges already save 40% of the tokens


def test_bpe_training_is_deterministic():
    a = BPETokenizer.train(TEXT, 280)
    b = BPETokenizer.train(TEXT, 280)
    assert a.merges == b.merges


def test_special_token_is_one_id_and_round_trips(bpe, chars):
    for tok in (bpe, chars):
        ids = tok.encode(f"first doc{EOS}second")
        assert ids.count(tok.eos_id) == 1
        assert tok.decode(ids) == f"first doc{EOS}second"


def test_char_without_fallback_is_the_classic_vocab_and_rejects_unknowns():
    tok = CharTokenizer.train("hello world", byte_fallback=False)
    assert tok.vocab_size == len(set("hello world"))
    assert tok.decode(tok.encode("low"))  == "low"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("☃")


def test_unseen_character_becomes_utf8_byte_tokens(chars):
    ids = chars.encode("☃")
    assert [chars.tokens[i] for i in ids] == ["<0xE2>", "<0x98>", "<0x83>"]


def test_save_load_round_trip(tmp_path, bpe, chars):
    for tok, cls in ((bpe, BPETokenizer), (chars, CharTokenizer)):
        path = tmp_path / f"{tok.kind}.json"
        tok.save(path)
        again = cls.load(path)
        assert again.encode(TEXT[:500]) == tok.encode(TEXT[:500]) and again.vocab_size == tok.vocab_size


def test_bpe_rejects_a_vocab_below_the_byte_alphabet():
    with pytest.raises(ValueError, match="256 byte tokens"):
        BPETokenizer.train(TEXT, 200)
