"""Numbers in the course text (docs/01–05) that are computed, not measured, recomputed here."""

from pathlib import Path

from llm_deeper.sizing import BYTES_PER_VALUE, KNOWN, parameters

DOCS = Path(__file__).resolve().parents[2] / "docs"


def flat(name: str) -> str:
    return " ".join((DOCS / name).read_text(encoding="utf-8").split())


def test_int4_reads_about_a_quarter_of_fp32s_bytes():
    """docs/03: projections in Q4_1 (0.625 B), the LM head (tied embedding) kept bf16, norms bf16."""
    a = KNOWN["smollm2-135m"]
    head, norms = a.vocab * a.hidden, (2 * a.layers + 1) * a.hidden
    projections = parameters(a) - head - norms
    int4 = projections * BYTES_PER_VALUE["q4_1"] + (head + norms) * 2
    fp32 = parameters(a) * 4
    assert round(int4 / 1e6) == 123 and round(fp32 / 1e6) == 538
    assert 0.2 < int4 / fp32 < 0.3  # "about a quarter"
    assert "≈ 123 MB read per token against fp32's 538 MB" in flat("03_inferencing.md")
