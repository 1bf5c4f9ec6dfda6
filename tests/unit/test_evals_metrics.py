"""Exact match, ROUGE, tool-use accuracy and the score aggregation, on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llm_deeper.evals.exact import contains, exact_match, normalize_answer
from llm_deeper.evals.rouge import rouge, rouge_detail
from llm_deeper.evals.scores import aggregate, aggregate_all, bootstrap_indices, bootstrap_stats
from llm_deeper.evals.tool_use import scored_calls, tool_scores

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}
TOOLS = [WEATHER, TIME]


def call(name: str, arguments) -> dict:
    return {"id": "call_x", "type": "function", "function": {"name": name, "arguments": arguments}}


# ── exact match / contains ─────────────────────────────────────────────────────

def test_exact_match_normalizes_case_punctuation_and_articles():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert exact_match("Paris.", "paris") == 1.0
    assert exact_match("It is Paris", "Paris") == 0.0


def test_contains_needs_whole_words_and_forgives_negation():
    assert contains("The capital is Paris.", "paris") == 1.0
    assert contains("Parisian food", "Paris") == 0.0  # not a whole word
    assert contains("It is not Paris", "Paris") == 1.0  # the documented failure mode


# ── ROUGE ──────────────────────────────────────────────────────────────────────

def test_rouge_identical_disjoint_and_known_overlap():
    same = rouge("the cat sat on the mat", "the cat sat on the mat")
    assert all(v == pytest.approx(1.0) for v in same.values())
    assert all(v == 0.0 for v in rouge("alpha beta gamma", "delta epsilon zeta").values())
    # "the cat sat" vs "the cat ran": unigrams 2/3 each way; bigrams 1/2 each way.
    r = rouge("the cat sat", "the cat ran")
    assert r["rouge1"] == pytest.approx(2 / 3)
    assert r["rouge2"] == pytest.approx(1 / 2)
    assert r["rougeL"] == pytest.approx(2 / 3)


def test_rouge_paraphrase_scores_low_and_stemming_helps():
    assert rouge("A canine is running.", "The dog runs.")["rouge1"] == 0.0
    assert rouge("the dogs running", "the dog runs")["rouge1"] == pytest.approx(1 / 3)
    assert rouge("the dogs running", "the dog runs", use_stemmer=True)["rouge1"] == pytest.approx(1.0)


def test_rouge_precision_and_recall_are_directional():
    d = rouge_detail("the cat", "the cat sat on the mat")
    assert d["rouge1"]["precision"] == pytest.approx(1.0)
    assert d["rouge1"]["recall"] == pytest.approx(2 / 6)


# ── tool-use accuracy ──────────────────────────────────────────────────────────

def test_tool_exact_call_scores_everything_right():
    s = tool_scores([call("get_weather", '{"city": "Paris"}')], [call("get_weather", '{"city":"Paris"}')], TOOLS)
    assert s == {"tool_call_decision": (1.0, 1.0), "tool_selection": (1.0, 1.0), "tool_args_exact": (1.0, 1.0),
                 "tool_full_match": (1.0, 1.0), "tool_schema_valid": (1.0, 1.0)}


def test_tool_right_name_wrong_arguments():
    s = tool_scores([call("get_weather", {"city": "Lyon"})], [call("get_weather", {"city": "Paris"})], TOOLS)
    assert s["tool_selection"] == (1.0, 1.0)
    assert s["tool_args_exact"] == (0.0, 1.0)
    assert s["tool_full_match"] == (0.0, 1.0)
    assert s["tool_schema_valid"] == (1.0, 1.0)  # wrong but valid


def test_tool_schema_validity_catches_bad_json_unknown_tools_and_schema_violations():
    predicted = [call("get_weather", '{"city": "Paris"'),  # truncated JSON
                 call("get_weather", {"city": "Paris", "unit": "kelvin"}),  # enum violated
                 call("launch_rocket", {}),  # unknown tool
                 call("get_time", {"tz": "UTC"})]  # fine
    s = tool_scores(predicted, [call("get_time", {"tz": "UTC"})], TOOLS)
    assert s["tool_schema_valid"] == (0.25, 4.0)
    assert s["tool_args_exact"] == (1.0, 1.0)  # the expected call is among them
    assert s["tool_selection"] == (0.0, 1.0)  # but the set of names is wrong
    assert s["tool_full_match"] == (0.0, 1.0)


def test_tool_no_call_decisions():
    assert tool_scores([], [], TOOLS) == {"tool_call_decision": (1.0, 1.0), "tool_no_call": (1.0, 1.0), "tool_full_match": (1.0, 1.0)}
    s = tool_scores([call("get_time", {"tz": "UTC"})], [], TOOLS)
    assert s["tool_no_call"] == (0.0, 1.0) and s["tool_call_decision"] == (0.0, 1.0)
    missed = tool_scores([], [call("get_time", {"tz": "UTC"})], TOOLS)
    assert missed["tool_call_decision"] == (0.0, 1.0) and missed["tool_args_exact"] == (0.0, 1.0)
    assert "tool_schema_valid" not in missed  # no predicted calls to check


def test_tool_parallel_calls_match_as_a_set_in_any_order():
    expected = [call("get_weather", {"city": "Paris"}), call("get_weather", {"city": "Rome"})]
    swapped = [call("get_weather", '{"city":"Rome"}'), call("get_weather", '{"city":"Paris"}')]
    assert tool_scores(swapped, expected, TOOLS)["tool_parallel_set"] == (1.0, 1.0)
    half = tool_scores([call("get_weather", {"city": "Rome"})], expected, TOOLS)
    assert half["tool_parallel_set"] == (0.0, 1.0)
    assert half["tool_args_exact"] == (0.5, 2.0)
    duplicate = tool_scores([call("get_weather", {"city": "Rome"})] * 2, expected, TOOLS)
    assert duplicate["tool_args_exact"] == (0.5, 2.0)  # one predicted call cannot satisfy two expected ones
    assert tool_scores([call("get_weather", {"city": "Paris"})], [expected[0]], TOOLS).get("tool_parallel_set") is None


def test_tool_arguments_compare_as_json_values():
    s = tool_scores([call("get_time", {"tz": "UTC", "n": 1.0})], [call("get_time", '{"n": 1, "tz": "UTC"}')])
    assert s["tool_args_exact"] == (1.0, 1.0)
    assert "tool_schema_valid" not in s  # no tools column: nothing to validate against


# ── aggregation and bootstrap ──────────────────────────────────────────────────

def records(name, pairs):
    return [{"scores": {name: p}} for p in pairs]


def test_weighted_aggregate_skips_weight_zero_and_pools_call_rates():
    recs = records("tool_args_exact", [(1.0, 1.0), (0.5, 2.0), (0.0, 0.0)])
    agg = aggregate(recs, "tool_args_exact")
    assert agg.value == pytest.approx(2 / 3)  # (1 + 1) hits over 3 calls
    assert agg.n == 2 and agg.weight == 3.0


def test_perplexity_aggregate_is_exp_of_token_weighted_nll():
    recs = records("ppl", [(1.0, 10.0), (3.0, 30.0)])
    assert aggregate(recs, "ppl").value == pytest.approx(math.exp((10 + 90) / 40))


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_more_data():
    rng = np.random.default_rng(1)
    small = records("exact_match", [(float(v), 1.0) for v in rng.random(20) < 0.5])
    large = records("exact_match", [(float(v), 1.0) for v in rng.random(2000) < 0.5])
    a, b = aggregate(small, "exact_match"), aggregate(large, "exact_match")
    assert a.low <= a.value <= a.high and b.low <= b.value <= b.high
    assert (b.high - b.low) < (a.high - a.low) / 4
    constant = aggregate(records("exact_match", [(1.0, 1.0)] * 10), "exact_match")
    assert constant.low == constant.high == 1.0


def test_bootstrap_stats_resample_whole_examples():
    values, weights = np.array([0.0, 1.0]), np.array([1.0, 3.0])
    idx = np.array([[0, 0], [1, 1], [0, 1]])
    assert bootstrap_stats("tool_args_exact", values, weights, idx).tolist() == [0.0, 1.0, 0.75]
    assert bootstrap_indices(5, 7, seed=3).shape == (7, 5)


def test_aggregate_all_orders_known_metrics_first():
    recs = [{"scores": {"tool_full_match": (1.0, 1.0), "rouge1": (0.5, 1.0), "custom": (2.0, 1.0)}}]
    assert list(aggregate_all(recs)) == ["rouge1", "tool_full_match", "custom"]


def test_call_markup_the_parser_returned_as_text_is_no_correct_no_call():
    """A call to a tool that was not offered comes back as content (as from vLLM): it is a call, and a wrong one."""
    from llm_deeper.tools.formats import HERMES

    reply = HERMES.parse('<tool_call>\n{"name": "book_flight", "arguments": {"to": "Oslo"}}\n</tool_call>', tool_names=["get_weather"],
                         keep_cut=True).to_openai_message()
    assert not reply.get("tool_calls")
    scores = tool_scores(scored_calls(reply.get("tool_calls"), reply["content"]), [])
    assert scores["tool_no_call"] == (0.0, 1.0) and scores["tool_call_decision"] == (0.0, 1.0)
    assert scored_calls(None, "It is sunny in Oslo.") == []  # plain text stays no call
