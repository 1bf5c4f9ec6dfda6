"""Where an fp32 decode step of the engine spends its time, 1 and 8 rows, beside the machine's physical limit.

Default model, the engine's runner (eager, as served by default), a 64-token
prompt in every slot, then decode steps. For each batch size: milliseconds per
step (median of `--steps`), and torch.profiler's CPU time by op, grouped into
the matmuls (weights and attention), the attention's softmax/mask, the KV-cache
writes, RoPE, RMSNorm and SwiGLU's elementwise ops, and the rest; plus the
step's op count. The physical limit: a step reads every weight once (and each
row's KV cache), so it cannot take less than bytes ÷ memory bandwidth; the
bandwidth is measured here (sum of a 1 GiB tensor, best of 5, the engine's
thread count).

Run it as is, and with the AVX2-only kernel variables to see an AVX2 EPYC's
kernels on an AVX-512 machine:

    .venv/bin/python bench/bench_decode_profile.py [--steps 16]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 .venv/bin/python bench/bench_decode_profile.py

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time

from harness import progress, report

# torch op name → what it does in a decode step
GROUPS = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::_weight_int4pack_mm",
               "mkldnn::_linear_pointwise"),
    "softmax_and_mask": ("aten::_softmax", "aten::softmax", "aten::masked_fill", "aten::masked_fill_", "aten::le", "aten::arange",
                         "aten::lt", "aten::gt", "aten::ge"),
    "kv_cache_write": ("aten::index_put_", "aten::_index_put_impl_", "aten::index"),
    "rope": ("aten::cat", "aten::neg"),
    "norm_and_swiglu": ("aten::pow", "aten::mean", "aten::rsqrt", "aten::silu", "aten::mul", "aten::add", "aten::to", "aten::_to_copy"),
    "embedding": ("aten::embedding", "aten::index_select"),
}


def bandwidth_gb_s() -> float:
    """GB/s of a streaming read no cache holds (sum of 1 GiB of fp32)."""
    import torch

    data = torch.ones(256 * 1024 * 1024)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - start)
    del data
    return 256 * 1024 * 1024 * 4 / best / 1e9


def step_bytes(runner, batch: int, length: int) -> int:
    """Bytes a decode step must read: every weight once (embedding rows aside) and each row's keys and values."""
    import torch

    from llm_deeper.inference.quant import PackedWeight

    def size(w) -> int:
        if isinstance(w, torch.Tensor):
            return w.numel() * w.element_size()
        if isinstance(w, PackedWeight):  # two layouts of one weight; a step reads one of them
            return w.transposed.numel() * w.transposed.element_size()
        return sum(t.numel() * t.element_size() for t in vars(w).values() if isinstance(t, torch.Tensor))

    weights = size(runner.weights.lm_head) + size(runner.weights.norm)
    for layer in runner.weights.layers:
        weights += sum(size(p.weight) for p in (layer.qkv, layer.o, layer.gate_up, layer.down)) + size(layer.input_norm) + size(layer.post_norm)
    cache = runner.cache
    kv = 2 * cache.layers * cache.kv_heads * cache.head_dim * length * cache.keys[0].element_size() * batch
    return weights + kv


def profile(runner, batch: int, steps: int, start: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    tokens, adapters = [17] * batch, [None] * batch
    times = []
    for step in range(steps):
        begin = time.perf_counter()
        runner.decode(tokens, [start + step] * batch, adapters)
        times.append(time.perf_counter() - begin)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in range(4):
            runner.decode(tokens, [start + steps + step] * batch, adapters)
    by_op = collections.Counter()
    calls = 0
    for event in prof.key_averages():
        by_op[event.key] += event.self_cpu_time_total / 4 / 1e3  # ms per step
        calls += event.count
    total = sum(by_op.values())
    grouped = collections.Counter()
    for op, ms in by_op.items():
        group = next((g for g, names in GROUPS.items() if op in names), "other")
        grouped[group] += ms
    return {"ms_per_step": round(statistics.median(times) * 1e3, 2), "profiled_ms_per_step": round(total, 2), "ops_per_step": calls // 4,
            "share_by_group": {g: round(ms / total, 3) for g, ms in grouped.most_common()},
            "top_ops_ms": {op: round(ms, 2) for op, ms in by_op.most_common(8)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16, help="timed decode steps per batch size")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, the engine's default)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from llm_deeper.inference.runners import LlamaRunner
    from llm_deeper.models.loaders import load_model

    batches = [int(b) for b in args.batches.split(",")]
    loaded = load_model("smollm2-135m-instruct")
    runner = LlamaRunner(loaded.model, max(batches), 1024)
    prompt = list(range(100, 164))
    with torch.inference_mode():
        for slot in range(max(batches)):
            runner.prefill(slot, prompt, None)
    bandwidth = bandwidth_gb_s()
    progress(f"bandwidth {bandwidth:.1f} GB/s, capability {torch.backends.cpu.get_cpu_capability()}")
    rows = {}
    with torch.inference_mode():
        for batch in batches:
            entry = profile(runner, batch, args.steps, len(prompt))
            nbytes = step_bytes(runner, batch, len(prompt) + args.steps)
            floor_ms = nbytes / (bandwidth * 1e9) * 1e3
            entry.update({"bytes_per_step_mb": round(nbytes / 1e6, 1), "limit_ms_per_step": round(floor_ms, 2),
                          "tokens_per_s": round(batch * 1e3 / entry["ms_per_step"], 1),
                          "limit_tokens_per_s": round(batch * 1e3 / floor_ms, 1),
                          "share_of_limit": round(floor_ms / entry["ms_per_step"], 2)})
            progress(f"batch {batch}: {entry}")
            rows[f"batch_{batch}"] = entry
    report("decode_profile", {"dtype": "float32", "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                              "bandwidth_gb_s": round(bandwidth, 1), **rows})


if __name__ == "__main__":
    main()
