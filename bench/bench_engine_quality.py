"""Does a faster weight format keep the answers? The engine's fp32, bf16, int8 and int4 weights side by side.

Default model, the engine's own forward pass (`LlamaRunner`) in each format, on
the shipped instruction set (`data/fixtures/instructions.jsonl`):
- perplexity of the reference answers (teacher forcing, answer tokens only);
- against fp32, token by token: mean KL divergence and how often the arg-max
  token is the same (llama.cpp's `perplexity --kl-divergence` reports the same two);
- greedy answers to the first prompts: how many equal fp32's exactly, and the
  mean number of tokens before the first difference.

    .venv/bin/python bench/bench_engine_quality.py [--records 40] [--greedy 12] [--tokens 48]

Prints one JSON object.
"""

from __future__ import annotations

import argparse

from harness import report


def records(limit: int) -> list[tuple[list[dict], str]]:
    """(messages, reference answer) pairs from the shipped instruction set."""
    from llm_deeper.data.fixtures_data import instructions_path
    from llm_deeper.data.sft import read_jsonl

    pairs = []
    for example in read_jsonl(instructions_path())[:limit]:
        *prompt, answer = example.messages
        pairs.append((prompt, answer["content"]))
    return pairs


def answer_logprobs(runner, tokenizer, pairs) -> list:
    """Per record: log-probabilities [answer tokens, V] of every next token over the answer."""
    import torch

    from llm_deeper.chat_format import prompt_ids

    out = []
    for messages, answer in pairs:
        prompt = prompt_ids(tokenizer, messages)
        reply = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
        logits = runner.prompt_logits(prompt + reply)
        # position t predicts token t+1: the answer's tokens are predicted from len(prompt)-1 on
        out.append((torch.log_softmax(logits[len(prompt) - 1:-1].float(), dim=-1), torch.tensor(reply)))
    return out


def greedy(runner, tokenizer, pairs, tokens: int) -> list[list[int]]:
    """Greedy continuations (EOS ignored, fixed length) through prefill + decode."""
    from llm_deeper.chat_format import prompt_ids

    answers = []
    for messages, _ in pairs:
        prompt = prompt_ids(tokenizer, messages)
        ids = [int(runner.prefill(0, prompt, None).argmax())]
        for step in range(tokens - 1):
            ids.append(int(runner.decode([ids[-1]], [len(prompt) + step], [None])[0].argmax()))
        answers.append(ids)
    return answers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=40, help="reference answers to score")
    parser.add_argument("--greedy", type=int, default=12, help="prompts to answer greedily")
    parser.add_argument("--tokens", type=int, default=48, help="greedy tokens per prompt")
    args = parser.parse_args()

    import math

    import torch

    from llm_deeper.inference.runners import LlamaRunner
    from llm_deeper.models.loaders import load_model

    pairs = records(args.records)
    formats = {"fp32": ("float32", None), "bf16": ("bfloat16", None), "int8": ("bfloat16", "int8"), "int4": ("bfloat16", "int4")}
    scored, answers = {}, {}
    for name, (dtype, quant) in formats.items():
        loaded = load_model("smollm2-135m-instruct", dtype=dtype)
        runner = LlamaRunner(loaded.model, slots=1, max_len=2048, quant=quant)
        scored[name] = answer_logprobs(runner, loaded.tokenizer, pairs)
        answers[name] = greedy(runner, loaded.tokenizer, pairs[: args.greedy], args.tokens)
        tokenizer = loaded.tokenizer
        del loaded, runner
    result = {"model": "smollm2-135m-instruct", "records": len(pairs),
              "answer_tokens": sum(len(t) for _, t in scored["fp32"]), "greedy_prompts": args.greedy, "greedy_tokens": args.tokens}
    for name in formats:
        nll = torch.cat([-lp.gather(1, t[:, None])[:, 0] for lp, t in scored[name]])
        row = {"perplexity": round(math.exp(float(nll.mean())), 4)}
        if name != "fp32":
            kl, same = [], []
            for (ref, _), (lp, _) in zip(scored["fp32"], scored[name]):
                kl.append((ref.exp() * (ref - lp)).sum(-1))  # KL(fp32 || format) per token
                same.append(ref.argmax(-1) == lp.argmax(-1))
            row["mean_kl_vs_fp32"] = round(float(torch.cat(kl).mean()), 5)
            row["same_top1_vs_fp32"] = round(float(torch.cat(same).float().mean()), 4)
            prefix = [next((i for i, (a, b) in enumerate(zip(x, y)) if a != b), len(x)) for x, y in zip(answers["fp32"], answers[name])]
            row["greedy_identical_to_fp32"] = f"{sum(p == args.tokens for p in prefix)}/{args.greedy}"
            row["greedy_tokens_before_first_difference"] = round(sum(prefix) / len(prefix), 1)
        result[name] = row
    result["sample_greedy_int4"] = tokenizer.decode(answers["int4"][0])
    result["sample_greedy_fp32"] = tokenizer.decode(answers["fp32"][0])
    report("engine_quality", result)


if __name__ == "__main__":
    main()
