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
def test_readme_agent_example_answers_391():
    """Issue 18: the README's example once made 8 identical calls with "17 * 23," (the schema allowed the
    comma, the calculator refused it) and never answered. Now the pattern is the calculator's own form."""
    result = run_cli("agent", "What is 17 * 23?", "--tools", "calculator", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [line for line in result.stdout.splitlines() if "calculator(" in line]
    assert calls and all('"17 * 23,"' not in line for line in calls)
    assert "391" in result.stdout.strip().splitlines()[-1]  # the final answer line
