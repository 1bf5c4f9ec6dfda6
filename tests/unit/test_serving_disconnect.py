"""Issue 26 §2: a non-streamed request whose client left is cancelled while its tokens still flow."""

from __future__ import annotations

import asyncio

from llm_deeper.inference.engine import StreamEvent
from llm_deeper.serve.serving import Generations
from llm_deeper.serve.shutdown import ShutdownGate


class EndlessRequest:
    """An engine request that keeps producing tokens until cancelled (max_tokens far away, ignore_eos)."""

    def __init__(self):
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


class GoneClient:
    """The HTTP request of a client that hung up (what Starlette's Request reports)."""

    def __init__(self):
        self.asked = 0

    async def is_disconnected(self) -> bool:
        self.asked += 1
        return True


def test_a_client_that_left_is_noticed_while_tokens_flow():
    async def scenario():
        queue, request, client = asyncio.Queue(), EndlessRequest(), GoneClient()

        async def engine():  # a token every 10 ms: the queue is never empty for the 0.25 s poll
            while not request.cancelled:
                queue.put_nowait((0, StreamEvent(text="x", token_ids=[1])))
                await asyncio.sleep(0.01)

        producer = asyncio.create_task(engine())
        received = 0

        async def consume():
            nonlocal received
            async for _ in Generations([request], queue, ShutdownGate()).events(client):
                received += 1
        try:
            await asyncio.wait_for(consume(), timeout=60)  # before the fix: never returned (tokens kept coming); 60 s: a loaded CI machine
        finally:
            request.cancelled = True
            await producer
        return request, client, received

    request, client, received = asyncio.run(scenario())
    assert request.cancelled and client.asked >= 1 and received >= 1  # it stopped while tokens flowed, not at max_tokens
