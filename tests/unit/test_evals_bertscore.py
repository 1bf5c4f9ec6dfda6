"""BERTScore with the bundled MiniLM encoder: known cases, empty strings, a by-hand check."""

from __future__ import annotations

import pytest
import torch

from llm_deeper.errors import UserError
from llm_deeper.evals.bertscore import BertScoreConfig, bertscore, describe, encoder_folder
from llm_deeper.evals.rouge import rouge
from llm_deeper.lesson import sum_tolerance


def by_hand_f1(candidate: str, reference: str, layer: int) -> float:
    """Greedy cosine matching of token embeddings from hidden layer `layer`.

    As in the BERTScore paper's code: [CLS]/[SEP] may be matched, but they are
    not averaged over (their weight is 0).
    """
    from transformers import AutoModel, AutoTokenizer

    folder = encoder_folder()
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()

    def embed(text):
        enc = tok(text, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc, output_hidden_states=True).hidden_states[layer][0]
        return torch.nn.functional.normalize(hidden, dim=-1)

    c, r = embed(candidate), embed(reference)
    sim = c @ r.T
    p, rec = sim.max(dim=1).values[1:-1].mean(), sim.max(dim=0).values[1:-1].mean()
    return float(2 * p * rec / (p + rec))


def test_identical_paraphrase_disjoint_and_empty():
    rows = bertscore(
        ["the cat sat on the mat", "A canine is running.", "quarterly revenue grew", "", "", "text"],
        ["the cat sat on the mat", "The dog runs.", "the cat sat on the mat", "", "text", ""],
    )
    identical, paraphrase, disjoint, both_empty, empty_pred, empty_ref = rows
    assert identical["f1"] == pytest.approx(1.0, abs=sum_tolerance(384))  # a 384-wide fp32 cosine of a vector with itself
    assert paraphrase["f1"] > disjoint["f1"] + 0.2  # meaning, not words
    assert rouge("A canine is running.", "The dog runs.")["rouge1"] == 0.0  # ROUGE sees no overlap at all
    assert both_empty == {"p": 1.0, "r": 1.0, "f1": 1.0}
    assert empty_pred["f1"] == 0.0 and empty_ref["f1"] == 0.0


def test_library_call_matches_by_hand_greedy_cosine():
    pair = ("The weather in Paris is sunny today.", "Today it is sunny in Paris.")
    got = bertscore([pair[0]], [pair[1]], BertScoreConfig(layer=5))[0]["f1"]
    # fp32 encoders, batched vs alone: 384-wide products in each of 6 layers may round in another order (2.3e-5).
    assert got == pytest.approx(by_hand_f1(*pair, layer=5), abs=sum_tolerance(384 * 6))
    assert got != pytest.approx(by_hand_f1(*pair, layer=6), abs=1e-4)  # so the layer setting is really used


def test_report_names_encoder_layer_and_comparability():
    info = describe(BertScoreConfig(layer=5))
    assert info["encoder"] == "sentence-transformers/all-MiniLM-L6-v2" and info["layer"] == 5
    assert "roberta-large" in info["note"] and "not comparable" in info["note"]
    with pytest.raises(UserError, match="between 1 and 6"):
        bertscore(["a"], ["b"], BertScoreConfig(layer=9))
