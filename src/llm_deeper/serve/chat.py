"""POST /v1/chat/completions: messages (and tools) in; an assistant message, or a stream of deltas, out.

The tools, prompt, constraint and parsing are the chat layer's (`chat/plan.py`),
the same steps the evals, BFCL, the agent and the fine-tune probe take in-process.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..chat.plan import ChatPlan, ChatRequestError, ReplyStream, finish_reason, parse_reply, plan_request, prompt_messages
from ..chat.request import ChatRequest
from .errors import APIError
from .responses import ResponseMeta, event_stream, usage
from .schemas import ChatCompletionRequest
from .serving import Choice, Generations, Job, Serving, cached_tokens, completion_tokens


def chat_request(body: ChatCompletionRequest) -> ChatRequest:
    """The validated body as the chat layer's request (messages as plain dicts)."""
    messages = []
    for message in body.messages:
        item: dict = {"role": message.role, "content": message.text()}
        if message.name:
            item["name"] = message.name
        if message.tool_calls:
            item["tool_calls"] = [call.model_dump() for call in message.tool_calls]
        if message.tool_call_id:
            item["tool_call_id"] = message.tool_call_id
        messages.append(item)
    choice = body.tool_choice.model_dump() if hasattr(body.tool_choice, "model_dump") else body.tool_choice
    fmt = body.response_format
    response_format = None
    if fmt is not None and fmt.type != "text":
        response_format = {"type": fmt.type}
        if fmt.type == "json_schema":
            response_format["json_schema"] = {"schema": fmt.json_schema.schema_}
    return ChatRequest(messages, tools=[t.model_dump(exclude_none=True) for t in body.tools or []] or None, tool_choice=choice,
                       parallel_tool_calls=body.parallel_tool_calls, response_format=response_format)


class ChatServing(Serving):
    """Chat completions, whole or streamed, with tool calls parsed out of the text."""

    def _prepare(self, body: ChatCompletionRequest) -> tuple[ChatPlan, list[int]]:
        """Check the tools, render the conversation and tokenize it (in a worker thread)."""
        request = chat_request(body)
        try:
            plan = plan_request(request)
            return plan, self.encode(prompt_messages(request, plan), param="messages")
        except ChatRequestError as exc:
            raise APIError(400, str(exc), param=exc.param, code="invalid_tools" if exc.param in ("tools", "tool_choice") else None) from None

    async def create(self, body: ChatCompletionRequest, http: Request):
        adapter = self.adapter_for(body.model)
        self.check_capacity(body.n)
        for field in ("max_tokens", "max_completion_tokens"):  # max_completion_tokens wins, but a max_tokens past the context is still wrong
            self.check_reply_limit(getattr(body, field), field)
        plan, prompt_ids = await self.off_loop(self._prepare, body)
        max_new = self.max_new_tokens(len(prompt_ids), body.requested_max_tokens(), param="messages")
        logprobs = (body.top_logprobs or 0) if body.logprobs else None
        jobs = [Job(prompt_ids, self.sampling(body, max_new, i, plan.constraint), adapter, logprobs) for i in range(body.n)]
        generations = await self.start(jobs, constraint_param="tools" if plan.parses_calls else "response_format")
        meta = ResponseMeta.new("chatcmpl", self.model_name(body))
        if body.stream:
            return event_stream(self._stream(generations, meta, plan, len(prompt_ids), body))
        choices = [Choice() for _ in jobs]
        async for index, event in generations.events(http):
            choices[index].add(event)
        out = []
        for index, choice in enumerate(choices):
            message = parse_reply(plan, "".join(choice.text))
            out.append({"index": index, "message": message, "logprobs": self._logprobs(choice.logprobs) if body.logprobs else None,
                        "finish_reason": finish_reason(choice.finish_reason, message)})
        return JSONResponse(meta.body("chat.completion", choices=out, usage=usage(len(prompt_ids), completion_tokens(choices), cached_tokens(choices, body.n))))

    def _logprobs(self, logprobs) -> dict:
        def entry(token_id: int, value: float) -> dict:
            text = self.token_text(token_id)
            return {"token": text, "logprob": value, "bytes": list(text.encode("utf-8"))}

        return {"content": [{**entry(lp.token_id, lp.logprob), "top_logprobs": [entry(t, v) for t, v in lp.top]} for lp in logprobs]}

    async def _stream(self, generations: Generations, meta: ResponseMeta, plan: ChatPlan, prompt_len: int,
                      body: ChatCompletionRequest):
        include_usage = body.include_usage()
        choices = [Choice() for _ in range(len(generations))]
        streams = [ReplyStream(plan) for _ in choices]

        def chunk(index: int, delta: dict, finish=None, logprobs=None) -> dict:
            payload = meta.body("chat.completion.chunk", choices=[{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}])
            if include_usage:
                payload["usage"] = None  # OpenAI sends null usage on every chunk but the last
            return payload

        for index in range(len(choices)):
            yield chunk(index, {"role": "assistant", "content": ""})
        async for index, event in generations.events():
            choices[index].add(event)
            logprobs = self._logprobs(event.logprobs) if body.logprobs and event.logprobs else None
            pieces = streams[index].feed(event.text, finished=event.finish_reason is not None)
            for number, delta in enumerate(pieces):
                yield chunk(index, delta, logprobs=logprobs if number == 0 else None)
            if not pieces and logprobs:
                yield chunk(index, {}, logprobs=logprobs)
            if event.finish_reason:
                finish = "tool_calls" if streams[index].called and event.finish_reason == "stop" else event.finish_reason
                yield chunk(index, {}, finish)
        if include_usage:
            yield meta.body("chat.completion.chunk", choices=[], usage=usage(prompt_len, completion_tokens(choices), cached_tokens(choices, body.n)))


def router(serving: ChatServing, dependencies: list) -> APIRouter:
    routes = APIRouter(dependencies=dependencies)

    @routes.post("/v1/chat/completions", summary="Chat completion (OpenAI shape)")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        return await serving.create(body, request)

    return routes
