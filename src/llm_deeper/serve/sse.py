"""Server-sent events, as OpenAI streams them: `data: {json}` blocks, then `data: [DONE]`."""

from __future__ import annotations

import json

DONE = "data: [DONE]\n\n"


def sse(payload: dict) -> str:
    """One event: compact JSON after `data: `, ended by a blank line."""
    return "data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False) + "\n\n"
