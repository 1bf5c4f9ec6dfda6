"""The course's pictures are current: each stamp (a hash of its drawing code, the library code it
shows and the numbers it quotes) equals the one written when it was drawn, each is a small PNG,
and the docs show each one. No drawing here: `llm-deeper lessons figures` does that."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from llm_deeper.figures import PICTURES, figures_dir, stale, stamp

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_picture_is_current():
    assert not stale(), f"pictures whose sources changed since they were drawn: {stale()}; run `llm-deeper lessons figures {' '.join(stale())}`"


def test_pictures_are_small_pngs_shown_in_the_docs():
    text = "".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    for picture in PICTURES:
        png = figures_dir() / f"{picture.name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size < 40_000, picture.name
        assert f"](figures/{picture.name}.png)" in text, f"no doc shows {picture.name}.png"


def test_a_changed_source_changes_the_stamp():
    quoted = next(p for p in PICTURES if p.data is not None)
    changed = dataclasses.replace(quoted, data=lambda: {**quoted.data(), "one more figure": 1.0})
    assert stamp(changed) != stamp(quoted)
    drawn = next(p for p in PICTURES if p.sources)
    assert stamp(dataclasses.replace(drawn, sources=drawn.sources + ("llm_deeper.sizing:parameters",))) != stamp(drawn)
