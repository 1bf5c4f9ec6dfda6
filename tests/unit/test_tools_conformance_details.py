"""The conformance suite's failure details say what was expected (our own logic: a fake server)."""

from __future__ import annotations

from types import SimpleNamespace

from llm_deeper.tools.conformance import Conformance, Streamed


class StopsAfterForcedCall(Conformance):
    """A server that returns the right call but finish_reason 'stop' (as vLLM 0.32 does for forced calls)."""

    def __init__(self, finish_streamed: str, finish_whole: str) -> None:
        self.model, self.max_tokens = "m", 16
        self.finish_streamed, self.finish_whole = finish_streamed, finish_whole

    def create(self, messages=None, **kwargs):
        call = SimpleNamespace(id="c0", function=SimpleNamespace(name="get_weather", arguments='{"city":"Paris","unit":"celsius"}'))
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(tool_calls=[call], content=None), finish_reason=self.finish_whole)])

    def stream(self, messages=None, **kwargs):
        call = {"index": 0, "id": "c0", "name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'}
        return Streamed("", [call], self.finish_streamed, {})


def run_check(suite: Conformance):
    [result] = [r for r in _run_one(suite, "check_stream_equals_whole")]
    return result


def _run_one(suite, method):
    suite.CHECKS = [(method, method)]
    return suite.run()


def test_same_wrong_finish_reason_says_what_was_expected():
    result = run_check(StopsAfterForcedCall("stop", "stop"))
    assert not result.passed
    assert result.detail == "finish_reason 'stop' in both, expected 'tool_calls' for a forced call"


def test_streamed_and_whole_finish_reasons_that_differ_are_named_both():
    result = run_check(StopsAfterForcedCall("stop", "tool_calls"))
    assert not result.passed and result.detail == "finish_reason streamed 'stop' vs non-streamed 'tool_calls'"
    assert run_check(StopsAfterForcedCall("tool_calls", "tool_calls")).passed
