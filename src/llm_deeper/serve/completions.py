"""POST /v1/completions: text (or token ids) in; its continuation, whole or streamed, out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .responses import ResponseMeta, event_stream, usage
from .schemas import CompletionRequest
from .serving import Choice, Generations, Job, Serving, cached_tokens, completion_tokens


class CompletionServing(Serving):
    """Text completions: one generation per prompt and choice (choice i of prompt p is index p·n + i)."""

    async def create(self, body: CompletionRequest, http: Request):
        adapter = self.adapter_for(body.model)
        prompts = body.prompts()
        self.check_capacity(len(prompts) * body.n, param="n" if len(prompts) == 1 else "prompt")
        prompt_ids = await self.off_loop(lambda: [self.encode(prompt, param="prompt") for prompt in prompts])
        jobs = []
        for ids in prompt_ids:
            max_new = self.max_new_tokens(len(ids), body.max_tokens, param="prompt")
            jobs += [Job(ids, self.sampling(body, max_new, i), adapter, body.logprobs) for i in range(body.n)]
        generations = await self.start(jobs)
        meta = ResponseMeta.new("cmpl", self.model_name(body))
        prompt_tokens = sum(len(ids) for ids in prompt_ids)
        if body.stream:
            return event_stream(self._stream(generations, meta, prompt_tokens, body))
        choices = [Choice() for _ in jobs]
        async for index, event in generations.events(http):
            choices[index].add(event)
        out = []
        for index, choice in enumerate(choices):
            text = "".join(choice.text)
            if body.echo:
                text = self.engine.tokenizer.decode(prompt_ids[index // body.n], skip_special_tokens=True) + text
            out.append({"index": index, "text": text, "logprobs": self._logprobs(choice.logprobs) if body.logprobs is not None else None,
                        "finish_reason": choice.finish_reason})
        return JSONResponse(meta.body("text_completion", choices=out, usage=usage(prompt_tokens, completion_tokens(choices), cached_tokens(choices, body.n))))

    def _logprobs(self, logprobs, offset: int = 0) -> dict:
        tokens, values, tops, offsets = [], [], [], []
        for lp in logprobs:
            text = self.token_text(lp.token_id)
            tokens.append(text)
            values.append(lp.logprob)
            tops.append({self.token_text(t): v for t, v in lp.top})
            offsets.append(offset)
            offset += len(text)
        return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}

    async def _stream(self, generations: Generations, meta: ResponseMeta, prompt_tokens: int, body: CompletionRequest):
        include_usage = body.include_usage()
        choices = [Choice() for _ in range(len(generations))]
        offsets = [0] * len(choices)
        async for index, event in generations.events():
            choices[index].add(event)
            logprobs = self._logprobs(event.logprobs, offsets[index]) if body.logprobs is not None and event.logprobs else None
            offsets[index] += len(event.text)
            if event.text or logprobs or event.finish_reason:
                payload = meta.body("text_completion", choices=[{"index": index, "text": event.text, "logprobs": logprobs,
                                                                 "finish_reason": event.finish_reason}])
                if include_usage:
                    payload["usage"] = None
                yield payload
        if include_usage:
            yield meta.body("text_completion", choices=[], usage=usage(prompt_tokens, completion_tokens(choices), cached_tokens(choices, body.n)))


def router(serving: CompletionServing, dependencies: list) -> APIRouter:
    routes = APIRouter(dependencies=dependencies)

    @routes.post("/v1/completions", summary="Text completion (OpenAI shape)")
    async def completions(body: CompletionRequest, request: Request):
        return await serving.create(body, request)

    return routes
