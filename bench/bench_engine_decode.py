"""Decode speed of the engine vs transformers `generate` (and llama.cpp when installed), side by side.

Default model, greedy, 128 new tokens (EOS ignored so every run makes the same
number of tokens). The engine runs in fp32, bf16, int8 and int4 weights; the
baseline is `generate` in fp32 (bf16 reported too). Runs alternate and the best
run of each counts, so a busy machine hurts every side alike. Also: aggregate
throughput with 8 concurrent requests vs 1, and time to first token for
a ~1,000-token prompt.

    .venv/bin/python bench/bench_engine_decode.py [--tokens 128] [--rounds 2] [--quick]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import time

from harness import alternate, report


def hf_generate_rate(model, ids, tokens: int) -> float:
    import torch

    with torch.inference_mode():
        start = time.perf_counter()
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, min_new_tokens=tokens,
                             do_sample=False, temperature=None, top_p=None, top_k=None, pad_token_id=2)
        seconds = time.perf_counter() - start
    assert out.shape[1] - ids.shape[1] == tokens
    return tokens / seconds


def engine_rate(engine, messages, tokens: int) -> float:
    """Decode tokens/s of one request: time between the first and the last token."""
    from llm_deeper.inference.sampling import SamplingConfig

    stamps = []
    for event in engine.stream(messages, SamplingConfig(max_new_tokens=tokens, ignore_eos=True)):
        stamps.append(time.perf_counter())
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def engine_total_rate(engine, messages, tokens: int) -> float:
    """Like `generate`'s figure: tokens / (prefill + decode) wall time."""
    from llm_deeper.inference.sampling import SamplingConfig

    start = time.perf_counter()
    result = engine.generate(messages, SamplingConfig(max_new_tokens=tokens, ignore_eos=True))
    return len(result.token_ids) / (time.perf_counter() - start)


def concurrent_rate(engine, messages, clients: int, tokens: int) -> float:
    from llm_deeper.inference.sampling import SamplingConfig

    start = time.perf_counter()
    requests = [engine.submit(messages, SamplingConfig(max_new_tokens=tokens, ignore_eos=True, temperature=0.8, seed=i)) for i in range(clients)]
    total = sum(len(r.result().token_ids) for r in requests)
    return total / (time.perf_counter() - start)


def time_to_first_token(engine, prompt_tokens: int) -> tuple[float, int]:
    from llm_deeper.inference.sampling import SamplingConfig

    text = " ".join(["The quick brown fox jumps over the lazy dog."] * (prompt_tokens // 10))
    messages = [{"role": "user", "content": text}]
    n = len(engine.encode(messages))
    start = time.perf_counter()
    for _ in engine.stream(messages, SamplingConfig(max_new_tokens=1)):
        break
    return time.perf_counter() - start, n


def llama_cpp_rate(tokens: int) -> float | str:
    try:
        from llama_cpp import Llama
    except ImportError:
        return "llama-cpp-python not installed (pip install '.[llamacpp]', ~4 min compile)"
    from llm_deeper.models.embedded import gguf_path
    from llm_deeper.models.registry import REGISTRY

    path = gguf_path(REGISTRY["smollm2-135m-instruct"])  # the same Q4_1 file our model is converted from
    llm = Llama(model_path=str(path), n_threads=2, n_ctx=1024, verbose=False)
    prompt = llm.tokenize(b"<|im_start|>user\nTell me a story.<|im_end|>\n<|im_start|>assistant\n", special=True)
    best = 0.0
    for _ in range(2):
        llm.reset()
        start = time.perf_counter()
        count = 0
        for _token in llm.generate(prompt, temp=0.0, top_k=1):
            count += 1
            if count == tokens:
                break
        best = max(best, count / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="16 tokens, 1 round (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.rounds = 16, 1

    import torch

    from llm_deeper.inference.engine import Engine
    from llm_deeper.chat_format import prompt_ids
    from llm_deeper.models.loaders import load_model

    messages = [{"role": "user", "content": "Tell me a story about a lighthouse keeper."}]
    fp32 = load_model("smollm2-135m-instruct", dtype="float32")
    bf16 = load_model("smollm2-135m-instruct", dtype="bfloat16")
    ids = torch.tensor([prompt_ids(fp32.tokenizer, messages)])
    # Our engine in each weight format; bf16, int8 and int4 are explicit choices (quality: bench_engine_quality.py).
    engines = {"fp32": Engine(fp32, max_batch=8), "bf16": Engine(bf16, max_batch=8),
               "int8": Engine(bf16, max_batch=8, quant="int8"), "int4": Engine(bf16, max_batch=8, quant="int4")}
    sides = {"hf fp32": lambda: hf_generate_rate(fp32.model, ids, args.tokens),
             "hf bf16": lambda: hf_generate_rate(bf16.model, ids, args.tokens),
             **{name: (lambda engine=engine: engine_rate(engine, messages, args.tokens)) for name, engine in engines.items()},
             "fp32 end to end": lambda: engine_total_rate(engines["fp32"], messages, args.tokens)}
    runs = alternate(sides, args.rounds)  # a busy moment hurts every side alike
    hf = {"fp32": runs["hf fp32"], "bf16": runs["hf bf16"]}
    ours = {name: runs[name] for name in engines}
    ours32_total = runs["fp32 end to end"]
    aggregate = {}  # weight format -> (1 client, 8 clients) tokens/s
    for name in ("fp32", "bf16", "int4"):
        aggregate[name] = [max(concurrent_rate(engines[name], messages, clients, args.tokens // 2) for _ in range(args.rounds)) for clients in (1, 8)]
    ttft = {name: min(time_to_first_token(engines[name], 1000) for _ in range(args.rounds)) for name in ("fp32", "bf16", "int4")}
    for engine in engines.values():
        engine.close()
    llama = llama_cpp_rate(args.tokens)
    base = max(hf["fp32"])
    result = {
        "model": "smollm2-135m-instruct",
        "new_tokens": args.tokens,
        "rounds": args.rounds,
        "hf_generate_fp32_tokens_per_s": round(base, 1),
        "hf_generate_bf16_tokens_per_s": round(max(hf["bf16"]), 1),
        "engine_fp32_end_to_end_tokens_per_s": round(max(ours32_total), 1),
        "llama_cpp_tokens_per_s": round(llama, 1) if isinstance(llama, float) else llama,
    }
    for name, rates in ours.items():
        result[f"engine_{name}_decode_tokens_per_s"] = round(max(rates), 1)
        result[f"ratio_engine_{name}_vs_hf_fp32"] = round(max(rates) / base, 2)
        if isinstance(llama, float):
            result[f"ratio_engine_{name}_vs_llama_cpp"] = round(max(rates) / llama, 2)
    result.update({
        **{f"{name}_aggregate_{clients}_tokens_per_s": round(rate, 1) for name, rates in aggregate.items() for clients, rate in zip(("1_client", "8_clients"), rates)},
        **{f"{name}_ratio_8_vs_1": round(eight / one, 2) for name, (one, eight) in aggregate.items()},
        "ttft_prompt_tokens": ttft["fp32"][1],
        **{f"ttft_{name}_s": round(seconds, 3) for name, (seconds, _) in ttft.items()},
    })
    report("engine_decode", result)


if __name__ == "__main__":
    main()
