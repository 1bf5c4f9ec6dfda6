"""Decode speed of the engine vs transformers `generate` (and llama.cpp when installed), side by side.

Default model, greedy, 128 new tokens (EOS ignored so every run makes the same
number of tokens). Runs alternate A/B and the best run of each counts, so a
busy machine hurts both sides alike. Also: aggregate throughput with 8
concurrent requests vs 1, and time to first token for a ~1,000-token prompt.

    .venv/bin/python bench/bench_engine_decode.py [--tokens 128] [--rounds 2] [--quick]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


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
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python not installed (pip install '.[llamacpp]', ~4 min compile)"
    import importlib.resources

    from llama_cpp import Llama

    from llm_deeper.models.registry import REGISTRY

    spec = REGISTRY["smollm2-135m-instruct"]
    path = importlib.resources.files(spec.wheel_package) / spec.gguf_file
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
    from llm_deeper.inference.hf_stream import chat_input_ids
    from llm_deeper.models.loaders import load_model

    messages = [{"role": "user", "content": "Tell me a story about a lighthouse keeper."}]
    fp32 = load_model("smollm2-135m-instruct", dtype="float32")
    bf16 = load_model("smollm2-135m-instruct", dtype="bfloat16")
    ids = chat_input_ids(fp32.tokenizer, messages)
    engine32 = Engine(fp32, max_batch=8)
    engine16 = Engine(bf16, max_batch=8)
    engine8 = Engine(bf16, max_batch=8, int8=True)  # int8 weights, bf16 activations (an explicit choice)
    hf, ours32, ours16, ours8, ours32_total = [], [], [], [], []
    hf_generate_rate(fp32.model, ids, 4)  # warm-up both paths
    engine_rate(engine32, messages, 4)
    engine_rate(engine16, messages, 4)
    engine_rate(engine8, messages, 4)
    for _ in range(args.rounds):
        hf.append(hf_generate_rate(fp32.model, ids, args.tokens))
        ours32.append(engine_rate(engine32, messages, args.tokens))
        ours16.append(engine_rate(engine16, messages, args.tokens))
        ours8.append(engine_rate(engine8, messages, args.tokens))
        ours32_total.append(engine_total_rate(engine32, messages, args.tokens))
    single = max(concurrent_rate(engine16, messages, 1, args.tokens // 2) for _ in range(args.rounds))
    eight = max(concurrent_rate(engine16, messages, 8, args.tokens // 2) for _ in range(args.rounds))
    ttft, prompt_len = min(time_to_first_token(engine16, 1000) for _ in range(args.rounds))
    ttft32, _ = min(time_to_first_token(engine32, 1000) for _ in range(args.rounds))
    llama = llama_cpp_rate(args.tokens)
    best16 = max(ours16)
    result = {
        "benchmark": "engine_decode",
        "model": "smollm2-135m-instruct",
        "new_tokens": args.tokens,
        "rounds": args.rounds,
        "hf_generate_fp32_tokens_per_s": round(max(hf), 1),
        "engine_fp32_decode_tokens_per_s": round(max(ours32), 1),
        "engine_fp32_end_to_end_tokens_per_s": round(max(ours32_total), 1),
        "engine_bf16_decode_tokens_per_s": round(best16, 1),
        "ratio_engine_fp32_vs_hf": round(max(ours32) / max(hf), 2),
        "ratio_engine_bf16_vs_hf": round(best16 / max(hf), 2),
        "engine_int8_decode_tokens_per_s": round(max(ours8), 1),
        "ratio_engine_int8_vs_hf": round(max(ours8) / max(hf), 2),
        "llama_cpp_tokens_per_s": round(llama, 1) if isinstance(llama, float) else llama,
        "ratio_engine_bf16_vs_llama_cpp": round(best16 / llama, 2) if isinstance(llama, float) else None,
        "ratio_engine_int8_vs_llama_cpp": round(max(ours8) / llama, 2) if isinstance(llama, float) else None,
        "bf16_aggregate_1_client_tokens_per_s": round(single, 1),
        "bf16_aggregate_8_clients_tokens_per_s": round(eight, 1),
        "ratio_8_vs_1": round(eight / single, 2),
        "ttft_prompt_tokens": prompt_len,
        "ttft_bf16_s": round(ttft, 3),
        "ttft_fp32_s": round(ttft32, 3),
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    engine32.close()
    engine16.close()
    engine8.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
