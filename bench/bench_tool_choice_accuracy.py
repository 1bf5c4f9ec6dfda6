"""Held-out tool-call accuracy of the default model through the constrained path, per tool_choice.

For each held-out prompt of the synthetic tool data set (`llm_deeper.data.toolcalls`, test split:
phrasings and values the train split never uses), the model sees the user message and the offered
tools (the right one + distractors), in-process, greedy, through `llm_deeper.chat.tool_constraint`:

- required: the grammar forces one call (schema-valid rate target: 100%);
- auto: free text, a started call is constrained.

Scores come from `llm_deeper.evals.tool_use` (schema-valid, right tool, exact arguments, no-call on
small talk). Prints one JSON object.
Run: nice -n 10 .venv/bin/python bench/bench_tool_choice_accuracy.py [--n 40] [--adapter DIR]
"""

from __future__ import annotations

import argparse
import time

from harness import report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40, help="held-out conversations to draw (about 1 in 10 is small talk)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=200, help="room for the longest constrained call (a cut-off call is invalid)")
    parser.add_argument("--modes", default="required,auto")
    parser.add_argument("--adapter", default=None, help="a LoRA adapter folder to apply first (after-fine-tune figures)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is far faster on a busy shared machine)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)

    from llm_deeper.data.toolcalls import make_tool_dataset
    from llm_deeper.evals.tool_use import tool_scores
    from llm_deeper.models.loaders import load_model
    from llm_deeper.inference.engine import Engine
    from llm_deeper.chat.tool_constraint import tool_call_constraint
    from llm_deeper.tools.formats import HERMES

    loaded = load_model("smollm2-135m-instruct")
    engine = Engine(loaded, adapters={"tuned": args.adapter} if args.adapter else None, max_batch=1)
    adapter = "tuned" if args.adapter else None
    _, test = make_tool_dataset(n_train=0, n_test=args.n, seed=args.seed)
    figures: dict = {"model": "smollm2-135m-instruct" + (f"+{args.adapter}" if args.adapter else ""),
                     "examples": len(test), "with_tool": sum(1 for e in test if e.meta.get("expected_tool"))}
    start_all = time.perf_counter()
    for mode in args.modes.split(","):
        totals: dict[str, list[float]] = {}
        outputs, failures = [], []
        for example in test:
            expected_tool = example.meta.get("expected_tool")
            if mode == "required" and expected_tool is None:
                continue  # small talk has no right call to force
            user = example.messages[:1]
            expected = example.messages[1].get("tool_calls") or []
            constraint = tool_call_constraint(example.tools, mode, parallel_tool_calls=False)
            text = engine.generate(user, max_new_tokens=args.max_new_tokens, tools=example.tools, constraint=constraint, adapter=adapter).text
            parsed = HERMES.parse(text, tool_names=[t["function"]["name"] for t in example.tools])
            predicted = [c.to_openai() for c in parsed.calls]
            scores = tool_scores(predicted, expected, example.tools)
            # Every output a complete call valid for its schema (a cut-off call counts as invalid).
            scores["valid_call_per_output"] = (float(bool(parsed.calls) and not parsed.errors and scores.get("tool_schema_valid", (0, 0))[0] == 1.0), 1.0)
            for key, (value, weight) in scores.items():
                bucket = totals.setdefault(key, [0.0, 0.0])
                bucket[0] += value * weight
                bucket[1] += weight
            outputs.append({"prompt": user[0]["content"], "expected": expected_tool, "output": text[:200]})
            if mode == "required" and not scores["valid_call_per_output"][0]:
                failures.append({"prompt": user[0]["content"], "output": text, "errors": parsed.errors})
        figures[mode] = {key: round(total / weight, 3) for key, (total, weight) in sorted(totals.items()) if weight}
        figures[mode]["n"] = len(outputs)
        figures[mode]["samples"] = outputs[:3]
        if failures:
            figures[mode]["invalid_outputs"] = failures
    figures["seconds"] = round(time.perf_counter() - start_all, 1)
    report("tool_choice_accuracy", figures)


if __name__ == "__main__":
    main()
