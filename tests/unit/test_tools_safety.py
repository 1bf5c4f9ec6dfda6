"""Issue 18, defect 1: a tool call cannot hang or crash the agent, and the calculator's form is one language.

Each call runs in a worker process that is killed at its deadline (a thread
could not be stopped while C code holds the GIL), with CPU and memory limits;
the calculator bounds every operation; its schema pattern and its evaluator
agree on the form (property tests, derandomized, a few hundred examples).
"""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_deeper.tools import ToolCall, ToolError, ToolRegistry
from llm_deeper.agent.loop import Agent, AgentConfig, ScriptedBackend
from llm_deeper.tools.builtin import default_registry
from llm_deeper.tools.calculator import MAX_EXPRESSION_CHARS, PATTERN, FormError, evaluate, parse, pattern_accepts
from llm_deeper.agent.executor import ExecutorConfig, ToolExecutor
from llm_deeper.tools.render import format_tool_calls

# What a regular expression cannot count (and the length bound, which xgrammar cannot keep beside a
# pattern): the only form errors a pattern-accepted text may still get.
UNCOUNTABLE = {"balance", "comma", "arity", "length"}

# A call that ends up in a result within this many seconds of its limit has been stopped, not waited for:
# the unbounded cases below run for minutes (measured: round(1, -3*10**7) answered after 30.9 s at timeout 2 s).
MARGIN_S = 5.0


def hostile_registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    def power(exponent: int) -> str:
        """A huge power, computed in C while holding the GIL.

        Args:
            exponent: The exponent of 7.
        """
        return str(len(str(7 ** exponent)))

    @registry.tool
    def hog(megabytes: int) -> str:
        """Allocate memory.

        Args:
            megabytes: How much.
        """
        return str(len(bytearray(megabytes * 1024 * 1024)))

    @registry.tool
    def spin() -> str:
        """Burn CPU forever."""
        while True:
            pass

    @registry.tool
    def shout(text: str) -> str:
        """Refuse, echoing the argument.

        Args:
            text: Anything.
        """
        raise ToolError(f"cannot use {text!r}")

    return registry


def test_a_call_stuck_in_c_code_is_killed_at_its_deadline_and_the_pool_recovers():
    executor = ToolExecutor(hostile_registry(), ExecutorConfig(timeout_s=0.5))
    start = time.perf_counter()
    stuck = executor.run_one(ToolCall("power", {"exponent": 10**9}))  # minutes of bignum arithmetic
    assert stuck.error_kind == "timeout" and "within 0.5 s" in stuck.content and "stopped" in stuck.content
    assert time.perf_counter() - start < 0.5 + MARGIN_S
    again = executor.run_one(ToolCall("power", {"exponent": 10}))  # a fresh worker answers
    assert again.ok and again.content == "9"
    executor.close()


def test_memory_and_cpu_limits_stop_a_runaway_tool():
    executor = ToolExecutor(hostile_registry(), ExecutorConfig(timeout_s=60, cpu_s=1, memory_mb=200))
    hog = executor.run_one(ToolCall("hog", {"megabytes": 4096}))
    assert hog.error_kind == "resource" and "memory (limit 200 MB)" in hog.content
    assert executor.run_one(ToolCall("hog", {"megabytes": 10})).content == str(10 * 1024 * 1024)  # within the limit
    spin = executor.run_one(ToolCall("spin", {}))  # the wall clock allows 60 s; the CPU limit stops it after 1 s
    assert spin.error_kind == "resource" and "1 s of CPU time" in spin.content
    assert spin.seconds < 1 + 60 / 2
    executor.close()


def test_error_messages_cap_echoed_arguments():
    executor = ToolExecutor(hostile_registry() , ExecutorConfig(max_output_chars=300))
    huge = "x" * 100_000
    refused = executor.run_one(ToolCall("shout", {"text": huge}))
    assert refused.error_kind == "tool_error" and len(refused.content) < 400 and "truncated" in refused.content
    assert len(executor.run_one(ToolCall(huge, {})).content) < 400  # unknown tool name
    calculator = ToolExecutor(default_registry())
    invalid = calculator.run_one(ToolCall("calculator", {"expression": "x" * 100_000}))  # the pattern refuses it
    assert invalid.error_kind == "invalid_arguments" and len(invalid.content) < 2000 and "…" in invalid.content
    too_long = calculator.run_one(ToolCall("calculator", {"expression": "1" * 100_000}))  # the evaluator's bound refuses it
    assert too_long.error_kind == "tool_error" and "longer than 120 characters" in too_long.content and len(too_long.content) < 200
    executor.close()
    calculator.close()


@pytest.mark.parametrize("expression, message", [
    ("exp(1000)", "too large"), ("round(1, -10**9)", "digits"), ("round(1, -3*10**7)", "digits"), ("10**10**10", "exponents"),
    ("9 ** 9 ** 9", "exponents"), ("factorial(10**6)", "factorial"), ("factorial(3.5)", "factorial"), ("2**999 * 2**999", "too large"),
    ("99**999", "too large"), ("(10**50)**3", "too large"), ("1" * 101, "too large"), ("sqrt(-1)", "math domain"),
    ("log(2, 1)", "division by zero"), ("(-8) ** 0.5", "no real value"), ("0 ** -1", "division by zero"), ("1 % 0", "division by zero"),
])
def test_hostile_calculator_input_is_a_tool_error_at_once(expression, message):
    with pytest.raises(ToolError, match=message):
        evaluate(expression)
    result = ToolExecutor(default_registry(), ExecutorConfig(timeout_s=5)).run_one(ToolCall("calculator", {"expression": expression}))
    assert result.error_kind == "tool_error" and message in result.content  # not "crash", not "timeout"


@pytest.mark.parametrize("expression, value", [
    ("17 * 23", 391), (" 17*23 ", 391), ("round(2.345, 2)", 2.35), ("factorial(5)", 120), ("007 + 1", 8), ("2 ^ 10", 1024),
    ("-(-(3))", 3), ("max(1, 5, 3) - min(4, 2)", 3), ("log(8, 2)", 3), ("5. + .5", 5.5), ("2 ** -1", 0.5), ("1 - - 5", 6),
])
def test_calculator_reads_its_language(expression, value):
    assert evaluate(expression) == pytest.approx(value)


@pytest.mark.parametrize("expression, reason", [
    ("17 * 23,", "pattern"), ("1 +", "pattern"), ("+5", "pattern"), ("1e5", "pattern"), ("sqrt (2)", "pattern"), ("2(3)", "pattern"),
    ("x", "pattern"), ("", "pattern"), (" ", "pattern"), ("1" * 121, "length"), ("(1 + 2", "balance"), ("1, 2", "comma"), ("sqrt(1, 2)", "arity"),
    ("round(1, 2, 3)", "arity"),
])
def test_calculator_names_what_is_wrong_with_the_form(expression, reason):
    with pytest.raises(FormError) as caught:
        evaluate(expression)
    assert caught.value.reason == reason
    assert pattern_accepts(expression) == (reason in UNCOUNTABLE)


def test_the_schema_carries_the_evaluators_pattern():
    parameters = default_registry().get("calculator").parameters["properties"]["expression"]
    assert parameters["pattern"] == PATTERN


# ── property tests: one language, bounded time ───────────────────────────────

PROPERTY = settings(derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

def evaluator_form_accepts(text: str) -> bool:
    try:
        parse(text)
    except FormError:
        return False
    return True


def timed_evaluate(text: str) -> float:
    start = time.perf_counter()
    try:
        evaluate(text)
    except ToolError:
        pass
    return time.perf_counter() - start


NUMBERS = st.one_of(st.integers(0, 10**12).map(str), st.floats(0, 1e6, allow_nan=False).map(lambda x: f"{x:.3f}"), st.sampled_from(["pi", "e"]))


def expressions(depth: int = 3):
    """Well-formed expressions of the calculator's grammar (balanced, right arity, commas only between arguments)."""
    def extend(inner):
        unary = st.sampled_from(["", "-"])
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "^"]), inner, st.sampled_from(["", " "])).map(
            lambda t: f"{t[0]}{t[3]}{t[1]}{t[3]}{t[2]}")
        group = st.tuples(unary, inner).map(lambda t: f"{t[0]}({t[1]})")
        one = st.tuples(st.sampled_from(["sqrt", "sin", "cos", "tan", "log10", "exp", "abs", "floor", "ceil", "factorial", "round", "log"]), inner).map(
            lambda t: f"{t[0]}({t[1]})")
        two = st.tuples(st.sampled_from(["round", "log", "min", "max"]), inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})")
        return st.one_of(binary, group, one, two)
    return st.recursive(st.tuples(st.sampled_from(["", "-"]), NUMBERS).map("".join), extend, max_leaves=8).filter(
        lambda text: len(text) <= MAX_EXPRESSION_CHARS)


@PROPERTY
@given(st.text(alphabet="0123456789+-*/%^(). ,epiqrtsncolgxabfmdu_=[]'\"\n", max_size=40))
def test_evaluator_accepts_only_what_the_pattern_accepts(text):
    if evaluator_form_accepts(text):
        assert pattern_accepts(text)
    if not pattern_accepts(text):
        assert not evaluator_form_accepts(text)
    assert timed_evaluate(text) < MARGIN_S


TOKENS = st.sampled_from(["1", "23", "4.5", ".5", "7.", "0", "pi", "e", "+", "-", "*", "/", "//", "%", "**", "^", ",", "(", ")", " ",
                          "sqrt(", "round(", "max(", "log(", "factorial(", "foo(", "e5", "x", "sqrt"])


@PROPERTY
@given(st.lists(TOKENS, max_size=30).map("".join))
def test_pattern_accepted_text_fails_only_on_what_a_pattern_cannot_count(text):
    """Token soup: many texts the pattern accepts, many it refuses; the two sides agree on all of them."""
    if not pattern_accepts(text):
        assert not evaluator_form_accepts(text)
    else:
        try:
            parse(text)
        except FormError as error:
            assert error.reason in UNCOUNTABLE, (text, error.reason, str(error))
    assert timed_evaluate(text) < MARGIN_S


@PROPERTY
@given(expressions())
def test_grammar_expressions_are_accepted_by_both_and_answer_in_time(text):
    assert pattern_accepts(text), text
    assert evaluator_form_accepts(text), text
    assert timed_evaluate(text) < MARGIN_S


# ── the agent gives up on a call that keeps failing ──────────────────────────

def test_agent_stops_repeating_an_identical_failing_call():
    bad = format_tool_calls([ToolCall("calculator", {"expression": "17 * 23,"})])
    backend = ScriptedBackend([bad] * 8)
    result = Agent(backend, default_registry(), AgentConfig(max_steps=8)).run("What is 17 * 23?")
    assert result.stopped == "repeated_failure" and len(result.steps) == 3 and len(backend.replies) == 5
    assert "same failing call 3 times" in result.reason and "17 * 23," in result.reason
    # A call that fails once and is then corrected is normal traffic, not a rut.
    good = format_tool_calls([ToolCall("calculator", {"expression": "17 * 23"})])
    fixed = Agent(ScriptedBackend([bad, bad, good, "391"]), default_registry(), AgentConfig(max_steps=5)).run("17 * 23?")
    assert fixed.stopped == "answer" and fixed.answer == "391"
    assert json.loads(fixed.steps[2].results[0].content)["result"] == 391
    assert fixed.steps[0].results[0].error_kind == "invalid_arguments"  # the schema pattern refuses it before it runs
