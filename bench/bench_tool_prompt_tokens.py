"""Tokens per training conversation of the tool recipe: tools as JSON schemas (issue 16) vs one signature a tool.

The JSON rendering is kept here only as the baseline it was until issue 23 (one compact JSON object
per tool, the whole schema: patterns, lengths, bounds, parameter descriptions); the library renders
signatures (`tools/render.py`). Both are measured on the same conversations, with the default
model's tokenizer, through the same training encoder (`chat_format.training_ids`). No timing:
the figures are counts, valid on any machine. Prints one JSON object.
Run: .venv/bin/python bench/bench_tool_prompt_tokens.py [--n 256]
"""

from __future__ import annotations

import argparse
import statistics
from unittest import mock

from harness import report


def json_tool_prompt(tools) -> str:
    """The issue-16 tool prompt: each tool's whole schema as one compact JSON line."""
    from llm_deeper.tools.calls import compact_json
    from llm_deeper.tools.render import tool_dicts

    lines = [compact_json({"name": f["name"], "description": f.get("description", ""),
                           "parameters": f.get("parameters") or {"type": "object", "properties": {}}})
             for f in (item["function"] for item in tool_dicts(tools))]
    return ("You can call tools (functions) to help answer the user. The available tools, as JSON:\n<tools>\n" + "\n".join(lines)
            + '\n</tools>\nTo call a tool, reply with only a tool call, for example:\n<tool_call>{"name":"tool_name","arguments":{"param":"value"}}</tool_call>\n'
            "Put several tool calls one per line to call several tools at once. Each tool result comes back in a <tool_response> message. "
            "When you have what you need, answer the user in plain text.")


def measure(tokenizer, examples) -> dict:
    from llm_deeper.chat_format import IGNORE, training_ids

    totals, labelled = [], []
    for example in examples:
        ids = training_ids(tokenizer, example.messages, example.tools)
        totals.append(len(ids.input_ids))
        labelled.append(sum(1 for label in ids.labels if label != IGNORE))
    prompt = [t - lab for t, lab in zip(totals, labelled)]
    return {"tokens_mean": round(statistics.mean(totals), 1), "prompt_tokens_mean": round(statistics.mean(prompt), 1),
            "labelled_tokens_mean": round(statistics.mean(labelled), 1), "tokens_total": sum(totals), "prompt_tokens_total": sum(prompt),
            "labelled_tokens_total": sum(labelled), "tokens_max": max(totals)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=256, help="training conversations (the speedrun recipe's n_train)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from llm_deeper.data.toolcalls import make_tool_dataset
    from llm_deeper.finetune.tool_recipe import ToolRecipe
    from llm_deeper.models.loaders import load_tokenizer
    from llm_deeper.models.registry import DEFAULT_MODEL
    from llm_deeper.tools import render

    recipe = ToolRecipe()
    tokenizer = load_tokenizer(DEFAULT_MODEL)
    train, _ = make_tool_dataset(n_train=args.n, n_test=0, seed=args.seed, distractors=recipe.distractors)
    after = measure(tokenizer, train)
    with mock.patch.object(render, "render_tool_prompt", json_tool_prompt):
        before = measure(tokenizer, train)
    report("tool_prompt_tokens", {"model": DEFAULT_MODEL, "conversations": len(train), "distractors": recipe.distractors,
                      "json_schemas": before, "signatures": after,
                      "prompt_tokens_ratio": round(before["prompt_tokens_mean"] / after["prompt_tokens_mean"], 2),
                      "tokens_ratio": round(before["tokens_mean"] / after["tokens_mean"], 2)})


if __name__ == "__main__":
    main()
