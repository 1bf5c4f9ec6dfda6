"""POST /v1/chat/completions: messages (and tools) in; an assistant message, or a stream of deltas, out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import tool_calls
from .grammar import Grammar, JsonGrammar
from .responses import ResponseMeta, event_stream, usage
from .schemas import ChatCompletionRequest
from .serving import Choice, Generations, Job, Serving, cached_tokens, completion_tokens


def response_grammar(body: ChatCompletionRequest) -> Grammar | None:
    """`response_format` as a grammar (the schema's presence is checked by the request model)."""
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    return JsonGrammar(fmt.json_schema.schema_ if fmt.type == "json_schema" else None)


class ChatServing(Serving):
    """Chat completions, whole or streamed, with tool calls parsed out of the text."""

    def _prepare(self, body: ChatCompletionRequest) -> tuple[tool_calls.ToolPlan, list[int]]:
        """Check the tools, render the conversation and tokenize it (in a worker thread)."""
        plan = tool_calls.plan_tools(body)
        return plan, self.encode(tool_calls.template_messages(body, plan), param="messages")

    async def create(self, body: ChatCompletionRequest, http: Request):
        adapter = self.adapter_for(body.model)
        self.check_capacity(body.n)
        plan, prompt_ids = await self.off_loop(self._prepare, body)
        max_new = self.max_new_tokens(len(prompt_ids), body.requested_max_tokens(), param="messages")
        logprobs = (body.top_logprobs or 0) if body.logprobs else None
        jobs = [Job(prompt_ids, self.sampling(body, max_new, i), adapter, logprobs) for i in range(body.n)]
        if plan.grammar is not None:
            generations = await self.start(jobs, plan.grammar, grammar_param="tools")
        else:
            generations = await self.start(jobs, response_grammar(body), grammar_param="response_format")
        meta = ResponseMeta.new("chatcmpl", self.model_name(body))
        if body.stream:
            return event_stream(self._stream(generations, meta, plan, len(prompt_ids), body))
        choices = [Choice() for _ in jobs]
        async for index, event in generations.events(http):
            choices[index].add(event)
        out = []
        for index, choice in enumerate(choices):
            text = "".join(choice.text)
            message = tool_calls.parse_whole(plan, text) if plan.parses_calls else {"role": "assistant", "content": text}
            finish = "tool_calls" if message.get("tool_calls") and choice.finish_reason == "stop" else choice.finish_reason
            out.append({"index": index, "message": message, "logprobs": self._logprobs(choice.logprobs) if body.logprobs else None,
                        "finish_reason": finish})
        return JSONResponse(meta.body("chat.completion", choices=out, usage=usage(len(prompt_ids), completion_tokens(choices), cached_tokens(choices, body.n))))

    def _logprobs(self, logprobs) -> dict:
        def entry(token_id: int, value: float) -> dict:
            text = self.token_text(token_id)
            return {"token": text, "logprob": value, "bytes": list(text.encode("utf-8"))}

        return {"content": [{**entry(lp.token_id, lp.logprob), "top_logprobs": [entry(t, v) for t, v in lp.top]} for lp in logprobs]}

    async def _stream(self, generations: Generations, meta: ResponseMeta, plan: tool_calls.ToolPlan, prompt_len: int,
                      body: ChatCompletionRequest):
        include_usage = body.include_usage()
        choices = [Choice() for _ in range(len(generations))]
        parsers = [tool_calls.new_parser(plan) if plan.parses_calls else None for _ in choices]
        called = [False] * len(choices)

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
            parser = parsers[index]
            if parser is None:
                if event.text or logprobs:
                    yield chunk(index, {"content": event.text}, logprobs=logprobs)
            else:
                pieces = tool_calls.deltas(parser.feed(event.text) + (parser.finish() if event.finish_reason else []))
                called[index] = called[index] or any("tool_calls" in d for d in pieces)
                for number, delta in enumerate(pieces):
                    yield chunk(index, delta, logprobs=logprobs if number == 0 else None)
                if not pieces and logprobs:
                    yield chunk(index, {}, logprobs=logprobs)
            if event.finish_reason:
                finish = "tool_calls" if called[index] and event.finish_reason == "stop" else event.finish_reason
                yield chunk(index, {}, finish)
        if include_usage:
            yield meta.body("chat.completion.chunk", choices=[], usage=usage(prompt_len, completion_tokens(choices), cached_tokens(choices, body.n)))


def router(serving: ChatServing, dependencies: list) -> APIRouter:
    routes = APIRouter(dependencies=dependencies)

    @routes.post("/v1/chat/completions", summary="Chat completion (OpenAI shape)")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        return await serving.create(body, request)

    return routes
