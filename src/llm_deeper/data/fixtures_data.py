"""Small data sets the package ships (src/llm_deeper/data/fixtures/), found without a network.

`instructions.jsonl`: 75 hand-written Alpaca-shaped records
{instruction, input, output, category} over nine categories (open_qa, coding,
math, writing, summarization, classification, extraction, brainstorming,
rewriting); lesson basics/00 explores it with pandas.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

INSTRUCTIONS_FILE = "instructions.jsonl"


def fixture_path(name: str) -> Path:
    """Path of a shipped fixture file (works from a checkout and from an installed wheel)."""
    path = Path(str(resources.files("llm_deeper.data") / "fixtures" / name))
    if not path.is_file():
        raise FileNotFoundError(f"fixture {name!r} is missing from the package (expected {path}); reinstall llm-deeper")
    return path


def instructions_path() -> Path:
    """The shipped instruction data set (JSONL, one record per line)."""
    return fixture_path(INSTRUCTIONS_FILE)


def load_instructions() -> list[dict]:
    """The instruction records as dicts (instruction, input, output, category)."""
    with instructions_path().open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
