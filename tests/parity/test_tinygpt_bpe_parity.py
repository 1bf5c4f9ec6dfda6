"""Our tokenizers vs `tokenizers` / transformers: same ids for the same vocab and merges."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_deeper.convert.tinygpt_export import hf_tokenizer
from llm_deeper.data.corpus import EOS, default_corpus
from llm_deeper.scratch.bpe import BPETokenizer
from llm_deeper.scratch.char_tokenizer import CharTokenizer

# Characters assigned in this Python's Unicode tables: `tokenizers` ships newer
# tables, where characters unassigned here may already be letters.
ASSIGNED = st.characters(blacklist_categories=("Cs", "Cn"))


@pytest.fixture(scope="module")
def corpus_text() -> str:
    corpus = default_corpus(max_chars=150_000)
    return corpus.train


@pytest.fixture(scope="module")
def trained(corpus_text):
    ours = BPETokenizer.train(corpus_text, vocab_size=400, special_tokens=[EOS])
    return ours, hf_tokenizer(ours)


@pytest.fixture(scope="module")
def hf_backend(trained):
    """The bare `tokenizers` BPE model loaded with our vocab and merges."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab, merges = trained[0].vocab_and_merges()
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.add_special_tokens([EOS])
    return backend


def test_same_ids_as_tokenizers_on_the_corpus(trained, hf_backend, corpus_text):
    ours, _ = trained
    sample = corpus_text[:40_000]
    assert ours.encode(sample) == hf_backend.encode(sample).ids


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet=ASSIGNED, max_size=60))
def test_same_ids_as_tokenizers_on_any_text(trained, hf_backend, text):
    ours, _ = trained
    assert ours.encode(text) == hf_backend.encode(text).ids


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" \t\n'sdtlmrevA1é½ ,.") ), max_size=40))
def test_pretokenizer_edge_cases_match(trained, hf_backend, text):
    """Whitespace runs, contractions and numbers: the rules where hand-written splitters slip."""
    ours, _ = trained
    assert ours.encode(text) == hf_backend.encode(text).ids


def test_transformers_tokenizer_matches_and_decodes(trained, corpus_text):
    ours, hf = trained
    sample = corpus_text[:5_000] + EOS + "naïve ☃"
    ids = ours.encode(sample)
    assert hf(sample, add_special_tokens=False)["input_ids"] == ids
    assert hf.decode(ids) == ours.decode(ids) == sample


@pytest.fixture(scope="module")
def char_pair():
    ours = CharTokenizer.train("abcdefghij klmnop,.\n", special_tokens=[EOS])
    return ours, hf_tokenizer(ours)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=ASSIGNED, max_size=40))
def test_char_tokenizer_matches_tokenizers_byte_fallback(char_pair, text):
    ours, hf = char_pair
    assert hf(text, add_special_tokens=False)["input_ids"] == ours.encode(text)
    assert hf.decode(ours.encode(text)) == text


def test_bpe_merges_are_in_frequency_order(corpus_text, trained):
    """The first merge is the most frequent byte pair within pre-tokens of the corpus."""
    from collections import Counter

    from llm_deeper.scratch.bpe import pretokenize

    ours, _ = trained
    pairs: Counter = Counter()
    for doc in corpus_text.split(EOS):
        for chunk in pretokenize(doc):
            b = chunk.encode("utf-8")
            pairs.update(zip(b, b[1:]))
    assert pairs[ours.merges[0]] == max(pairs.values())
