"""vLLM's side of `bench_decode_profile.py --prefill N --vllm`: where vLLM's CPU build spends one prompt's prefill.

Runs under vLLM's own environment (the bench script starts it there): vLLM's
`LLM` in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, so torch.profiler
sees the model's ops), fp32, prefix caching off, both cores
(`VLLM_CPU_NUM_OF_RESERVED_CPU=0`), the same prompt ids as our side. Each
prefill is one `generate` of one token. torch.profiler's self CPU time is
grouped as on our side; vLLM's model is one inductor graph, so its fused
elementwise kernels (RMSNorm, RoPE, SwiGLU, residual adds) are the graph call's
own time, `fused_elementwise`.

    <vllm env>/bin/python bench/vllm_prefill_profile.py MODEL_FOLDER LENGTH STEPS

Prints one JSON object (the bench script nests it under "vllm").
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import sys
import time

GROUPS = {  # vLLM op name → what it does in a prefill
    "matmul": ("_C::onednn_mm", "aten::mm", "aten::addmm", "aten::linear"),
    "attention": ("_C::cpu_attention_with_kv_cache",),
    "kv_cache_write": ("_C::cpu_attn_reshape_and_cache",),
    "fused_elementwise": ("## Call CompiledFxGraph None ##",),
}


def main() -> None:
    folder, length, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from torch.profiler import ProfilerActivity, profile
    from vllm import LLM, SamplingParams

    llm = LLM(model=folder, dtype="float32", max_model_len=length + 16, enable_prefix_caching=False, seed=0)
    one_token = SamplingParams(max_tokens=1, temperature=0.0)
    prompt = {"prompt_token_ids": [100 + (7 * i) % 40000 for i in range(length)]}  # bench_decode_profile's prompt

    def prefill() -> None:
        llm.generate([prompt], one_token, use_tqdm=False)

    prefill()
    times = []
    for _ in range(steps):
        begin = time.perf_counter()
        prefill()
        times.append(time.perf_counter() - begin)
    calls = 2
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            prefill()
    by_op = collections.Counter({event.key: event.self_cpu_time_total / calls / 1e3 for event in prof.key_averages()})
    grouped = collections.Counter()
    for op, ms in by_op.items():
        grouped[next((group for group, names in GROUPS.items() if op in names), "other")] += ms
    total = sum(by_op.values())
    print(json.dumps({"tokens": length, "ms_per_prefill": round(statistics.median(times) * 1e3, 1), "ms_each": [round(t * 1e3, 1) for t in times],
                      "profiled_ms_per_prefill": round(total, 2), "ms_by_group": {g: round(ms, 1) for g, ms in grouped.most_common()},
                      "share_by_group": {g: round(ms / total, 3) for g, ms in grouped.most_common()},
                      "top_ops_ms": {op: round(ms, 2) for op, ms in by_op.most_common(8)}}))


if __name__ == "__main__":
    main()
