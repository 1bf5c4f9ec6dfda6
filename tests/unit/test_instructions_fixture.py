"""The shipped instruction data set: present in the package, Alpaca-shaped, varied."""

from __future__ import annotations

import json

from llm_deeper.data.fixtures_data import fixture_path, instructions_path, load_instructions


def test_records_are_alpaca_shaped_and_varied():
    records = load_instructions()
    assert 60 <= len(records) <= 100
    for r in records:
        assert set(r) == {"instruction", "input", "output", "category"}
        assert all(isinstance(v, str) for v in r.values())
        assert r["instruction"].strip() and r["output"].strip() and r["category"].strip()
    categories = {r["category"] for r in records}
    assert len(categories) >= 8
    assert len({(r["instruction"], r["input"]) for r in records}) == len(records)  # no duplicates
    assert any(r["input"] for r in records) and any(not r["input"] for r in records)
    lengths = sorted(len(r["output"]) for r in records)
    assert lengths[0] < 20 and lengths[-1] > 300  # short answers and long ones


def test_path_is_a_jsonl_file_and_missing_fixture_is_a_clear_error():
    path = instructions_path()
    assert path.suffix == ".jsonl"
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert first["category"]
    try:
        fixture_path("nope.jsonl")
    except FileNotFoundError as exc:
        assert "nope.jsonl" in str(exc)
    else:
        raise AssertionError("a missing fixture must raise")
