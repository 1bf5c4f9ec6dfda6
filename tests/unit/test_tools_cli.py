"""`llm-deeper tools ...` and `llm-deeper agent` argument handling (no model needed)."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli


def test_tools_list_and_call():
    listed = run_cli("tools", "list", "--schemas")
    assert listed.returncode == 0, listed.stderr
    assert "get_weather" in [t["function"]["name"] for t in json.loads(listed.stdout)]
    ok = run_cli("tools", "call", "calculator", '{"expression": "17 * 23"}')
    assert ok.returncode == 0 and json.loads(ok.stdout)["result"] == 391
    refused = run_cli("tools", "call", "get_weather", '{"town": "Paris"}')
    assert refused.returncode == 1 and "'city' is a required property" in refused.stdout
    bad = run_cli("tools", "call", "get_weather", "not json")
    assert bad.returncode == 2 and "JSON object" in bad.stderr and "Traceback" not in bad.stderr


def test_agent_rejects_unknown_tools_in_one_line():
    result = run_cli("agent", "hi", "--tools", "calculator,teleport")
    assert result.returncode == 2 and "teleport" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("agent", "hi", "--tools", "calculator", "--tool-choice", "sometimes")
    assert result.returncode == 2 and "tool choice" in result.stderr


@pytest.mark.slow
def test_readme_agent_example_computes_391_and_answers_without_markup():
    """Issue 18: the README's example once made 8 identical calls with "17 * 23," (the schema allowed the
    comma, the calculator refused it) and never answered. Now the pattern is the calculator's own form.
    Issue 23: this test used to pass on a final "answer" that only echoed `<tool_response>...391...`; the
    base model's words after a result are its own (weak), so what is checked is the loop: one valid call
    whose result is 391, then an answer turn with no tool markup in it."""
    result = run_cli("agent", "What is 17 * 23?", "--tools", "calculator", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    calls = [line for line in lines if "calculator(" in line]
    assert len(calls) == 1 and '"17 * 23,"' not in calls[0]
    assert any('"result":391' in line.replace(" ", "") for line in lines)  # the executor's result line
    answer = result.stdout.split("→ answer", 1)[1]
    assert answer.strip() and "<tool_response>" not in answer and "<tool_call>" not in answer
