"""Figures the docs quote from bench/RESULTS.md must still stand there, so a re-measured bench
cannot leave a stale number in the course text (docs/00's numbers are recomputed from calc instead)."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RESULTS = (REPO / "bench" / "RESULTS.md").read_text()
QUOTE = re.compile(r"<!-- quoted from bench/RESULTS.md -->(.*?)<!-- end quote -->", re.S)
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
PAGES = sorted([*REPO.glob("docs/*.md"), REPO / "README.md"])


def quoted_numbers(text: str) -> list[str]:
    return [n for block in QUOTE.findall(text) for n in NUMBER.findall(re.sub(r"`[^`]*`", "", block))]


def test_the_checker_finds_quotes_and_misses():
    text = "<!-- quoted from bench/RESULTS.md -->speed 3.06×, 4,287 MB (`--steps 99`)<!-- end quote -->"
    assert quoted_numbers(text) == ["3.06", "4,287"]
    assert "987.65" not in RESULTS


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_quoted_figures_stand_in_results(page):
    missing = [n for n in quoted_numbers(page.read_text()) if n not in RESULTS]
    assert not missing, f"{page.name} quotes figures that bench/RESULTS.md no longer has: {missing}"


def test_docs_quote_at_least_one_block():
    assert any(quoted_numbers(p.read_text()) for p in PAGES)
