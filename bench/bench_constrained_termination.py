"""Do constrained tool calls end? The default model served, tool_choice required / named / auto, tools it never saw.

Issue 16's never-ending call ("Remind me in 45 minutes.", set_timer) and
issue 23's repeats (required ran to max_tokens on 17 of 18 requests with
2-4 calls where one was asked; a named tool_choice gave three identical
`multiply` calls). Serves the default model (`llm-deeper serve`, greedy) and
asks BFCL items (simple_python, multiple, parallel: tools never in the
training data; evaluation only) plus those two requests, under each
tool_choice, through the real `openai` client, a few at once. Prints one
JSON object per mode: replies that hit max_tokens, calls per reply, replies
with a repeated call, named replies with other than one call, and (required)
whether the streamed reply equals the whole one. Works against any server
version (HTTP only), so a before/after is the same command on two checkouts.

    .venv/bin/python bench/bench_constrained_termination.py [--per-category 6] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor

from harness import OurServer, progress, report

TIMER = [
    {"type": "function", "function": {"name": "set_timer", "description": "Set a timer.", "parameters": {"type": "object", "properties": {
        "minutes": {"type": "integer", "minimum": 1, "description": "Set timer duration in minutes."}, "label": {"type": "string"}},
        "required": ["minutes"]}}},
    {"type": "function", "function": {"name": "send_email", "description": "Send an email.", "parameters": {"type": "object", "properties": {
        "to": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"}}, "required": ["to", "subject", "body"]}}},
]
MULTIPLY = [{"type": "function", "function": {"name": "multiply", "description": "Multiply two numbers.", "parameters": {
    "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}}]


def requests(per_category: int) -> list[tuple[str, list[dict], list[dict]]]:
    """(id, messages, tools): the two issue requests, then BFCL items."""
    from llm_deeper.evals.bfcl import load_category, openai_tools

    out = [("issue16-timer", [{"role": "user", "content": "Remind me in 45 minutes."}], TIMER),
           ("issue23-multiply", [{"role": "user", "content": "What is 6 times 7?"}], MULTIPLY)]
    for category in ("simple_python", "multiple", "parallel"):
        out += [(item.id, item.messages, openai_tools(item.functions)) for item in load_category(category, per_category, seed=0)]
    return out


def ask(client, model: str, messages, tools, choice, max_tokens: int, stream: bool) -> dict:
    """One reply: finish reason, completion tokens (non-streamed), content and calls (a stream summed by call index)."""
    kwargs = dict(model=model, messages=messages, tools=tools, tool_choice=choice, max_tokens=max_tokens, temperature=0, seed=0)
    if not stream:
        response = client.chat.completions.create(**kwargs)
        choice0 = response.choices[0]
        calls = [[c.function.name, c.function.arguments] for c in choice0.message.tool_calls or []]
        return {"finish": choice0.finish_reason, "tokens": response.usage.completion_tokens, "content": choice0.message.content or "", "calls": calls}
    calls, content, finish = {}, [], None
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        content.append(chunk.choices[0].delta.content or "")
        for item in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(item.index, ["", ""])
            entry[0] += (item.function.name or "") if item.function else ""
            entry[1] += (item.function.arguments or "") if item.function else ""
    return {"finish": finish, "content": "".join(content), "calls": [calls[i] for i in sorted(calls)]}


def repeated(calls: list[list[str]]) -> bool:
    keys = []
    for name, arguments in calls:
        try:
            keys.append((name, json.dumps(json.loads(arguments), sort_keys=True)))
        except json.JSONDecodeError:
            keys.append((name, arguments))
    return len(set(keys)) < len(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-category", type=int, default=6, help="BFCL items per category (3 categories)")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (the server batches them)")
    args = parser.parse_args()
    from openai import OpenAI

    items = requests(args.per_category)
    figures: dict = {"requests": len(items), "max_tokens": args.max_tokens, "data": "issue 16 + 23 requests, BFCL simple_python/multiple/parallel (seed 0)"}
    with OurServer("--max-concurrency", str(args.concurrency)) as server:
        client = OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0, timeout=600)
        model = server.model()
        with ThreadPoolExecutor(args.concurrency) as pool:
            for mode in ("required", "named", "auto"):
                progress(f"{mode}: {len(items)} requests")

                def one(item, stream=False, mode=mode):
                    _, messages, tools = item
                    choice = {"type": "function", "function": {"name": tools[0]["function"]["name"]}} if mode == "named" else mode
                    return ask(client, model, messages, tools, choice, args.max_tokens, stream)

                replies = list(pool.map(one, items))
                entry = {
                    "hit_max_tokens": sum(r["finish"] == "length" for r in replies),
                    "calls_per_reply": round(sum(len(r["calls"]) for r in replies) / len(replies), 2),
                    "replies_with_a_repeated_call": sum(repeated(r["calls"]) for r in replies),
                    "completion_tokens_mean": round(sum(r["tokens"] for r in replies) / len(replies), 1),
                    "length_cut": [item[0] for item, r in zip(items, replies) if r["finish"] == "length"],
                }
                if mode == "named":
                    entry["replies_not_exactly_one_call"] = sum(len(r["calls"]) != 1 for r in replies)
                if mode == "auto":
                    entry["replies_with_calls"] = sum(bool(r["calls"]) for r in replies)
                if mode == "required":
                    streamed = list(pool.map(lambda item: one(item, stream=True), items))
                    entry["streamed_equals_whole"] = sum(s["calls"] == r["calls"] and s["finish"] == r["finish"] for s, r in zip(streamed, replies))
                    entry["issue16_timer"] = replies[0]
                if mode == "named":
                    entry["issue23_multiply"] = replies[1]
                figures[mode] = entry
    report("constrained_termination", figures)


if __name__ == "__main__":
    main()
