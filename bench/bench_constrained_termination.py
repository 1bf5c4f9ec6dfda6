"""Issue 16's never-ending call: base model, tool_choice required, "Remind me in 45 minutes.".

Serves the default model on a free loopback port, asks the same request
non-streamed and streamed (greedy), and prints one JSON object: finish
reasons, completion tokens, the calls each mode returned (a streamed reply
summed by call index, as a client does), and whether the two agree.

    .venv/bin/python bench/bench_constrained_termination.py [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import json
import time

from harness import in_thread, report

TOOLS = [
    {"type": "function", "function": {"name": "set_timer", "description": "Set a timer.", "parameters": {"type": "object", "properties": {
        "minutes": {"type": "integer", "minimum": 1, "description": "Set timer duration in minutes."}, "label": {"type": "string"}},
        "required": ["minutes"]}}},
    {"type": "function", "function": {"name": "send_email", "description": "Send an email.", "parameters": {"type": "object", "properties": {
        "to": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"}}, "required": ["to", "subject", "body"]}}},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    from openai import OpenAI

    from llm_deeper.inference.engine import Engine

    engine = Engine.load("smollm2-135m-instruct", max_batch=2)
    request = dict(messages=[{"role": "user", "content": "Remind me in 45 minutes."}], tools=TOOLS, tool_choice="required",
                   max_tokens=args.max_tokens, temperature=0)
    try:
        with in_thread(engine) as server:
            client = OpenAI(base_url=server.url + "/v1", api_key="x")
            start = time.perf_counter()
            whole = client.chat.completions.create(model=engine.name, **request)
            seconds = time.perf_counter() - start
            calls, content, finish = {}, [], None
            for chunk in client.chat.completions.create(model=engine.name, stream=True, **request):
                if not chunk.choices:
                    continue
                finish = chunk.choices[0].finish_reason or finish
                content.append(chunk.choices[0].delta.content or "")
                for item in chunk.choices[0].delta.tool_calls or []:
                    entry = calls.setdefault(item.index, ["", ""])
                    entry[0] += (item.function.name or "") if item.function else ""
                    entry[1] += (item.function.arguments or "") if item.function else ""
    finally:
        engine.close()
    choice = whole.choices[0]
    whole_calls = [[c.function.name, c.function.arguments] for c in choice.message.tool_calls or []]
    streamed_calls = [calls[i] for i in sorted(calls)]
    report("constrained_termination", {
        "max_tokens": args.max_tokens,
        "non_streamed": {"finish_reason": choice.finish_reason, "content": choice.message.content, "calls": whole_calls,
                         "completion_tokens": whole.usage.completion_tokens, "seconds": round(seconds, 1)},
        "streamed": {"finish_reason": finish, "content": "".join(content), "calls": streamed_calls},
        "agree": whole_calls == streamed_calls and (choice.message.content or "") == "".join(content) and choice.finish_reason == finish,
        "longest_string_argument": max((len(v) for _, a in whole_calls for v in _strings(a)), default=0),
    })


def _strings(arguments: str) -> list[str]:
    try:
        return [v for v in json.loads(arguments).values() if isinstance(v, str)]
    except json.JSONDecodeError:
        return []


if __name__ == "__main__":
    main()
