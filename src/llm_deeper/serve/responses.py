"""What every generation endpoint sends back: metadata, usage and SSE framing.

Chat and text completions differ only in their `choices`; the envelope
(`id`, `object`, `created`, `model`), the `usage` block and the event-stream
framing are built here, once, so the two endpoints cannot drift apart.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import AsyncIterator

from fastapi.responses import StreamingResponse

from .errors import APIError, error_body

DONE = "data: [DONE]\n\n"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering of events


@dataclass(frozen=True)
class ResponseMeta:
    """The envelope shared by a response and all its stream chunks."""

    id: str
    created: int
    model: str

    @classmethod
    def new(cls, prefix: str, model: str) -> "ResponseMeta":
        """`prefix` is "chatcmpl" or "cmpl", as OpenAI names its ids."""
        return cls(f"{prefix}-{uuid.uuid4().hex[:24]}", int(time.time()), model)

    def body(self, object_type: str, **fields) -> dict:
        return {"id": self.id, "object": object_type, "created": self.created, "model": self.model, **fields}


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict:
    """OpenAI's usage block (the one formula for chat, completions, streamed or not).

    `cached_tokens`: prompt tokens whose keys and values came from the prefix cache, reported where OpenAI
    reports its own prompt caching.
    """
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens}}


def sse(payload: dict) -> str:
    """One event: compact JSON after `data: `, ended by a blank line."""
    return "data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False) + "\n\n"


def error_event(exc: APIError) -> str:
    """A failure after the stream started: the status line is sent already, so the error travels as an event."""
    return sse(error_body(exc.status, exc.message, exc.param, exc.code))


async def framed(events: AsyncIterator[dict]) -> AsyncIterator[str]:
    """Payloads → SSE text; an APIError mid-stream becomes an error event; always ends with [DONE]."""
    try:
        async for payload in events:
            yield sse(payload)
    except APIError as exc:
        yield error_event(exc)
    yield DONE


def event_stream(events: AsyncIterator[dict]) -> StreamingResponse:
    return StreamingResponse(framed(events), media_type="text/event-stream", headers=STREAM_HEADERS)
