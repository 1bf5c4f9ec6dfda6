"""Where a decode step (or a long prompt's prefill) of the engine spends its time, beside the machine's limit.

Default model, the engine's runner (eager, as served by default; fp32 unless
`--dtype bfloat16|int8|int4`, the weights `serve --dtype` loads), a 64-token
prompt in every slot, then decode steps. For each batch size: milliseconds per
step (median of `--steps`), and torch.profiler's CPU time by op, grouped into
the matmuls (weights and attention), the attention's softmax/mask, the KV-cache
writes, RoPE, RMSNorm and SwiGLU's elementwise ops, and the rest; plus the
step's op count. The physical limit: a step reads every weight once (and each
row's KV cache), so it cannot take less than bytes ÷ memory bandwidth; the
bandwidth is measured here (sum of a 1 GiB tensor, best of 5, the engine's
thread count).

`--prefill N`: instead, the prefill of one N-token prompt (the TTFT row of
bench_vllm_vs_ours.py, whose prompt is ~1,000 tokens) through the runner's
`prefill`, as the engine runs a prompt that arrives while nothing decodes:
milliseconds per prefill (median of `--steps`), the same grouping plus the
attention kernel, the linears' GFLOP/s, and the minor page faults a prefill takes
(`--default-malloc` leaves glibc's thresholds as they are, inference/memory.py).
`--cached 16` prefills the prompt after its first 16 tokens are in the cache, as
the served TTFT row does (its chat-template system prompt is a cached block).
`--vllm` profiles vLLM's CPU build on the same prompt afterwards, in vLLM's own
environment (bench/vllm_prefill_profile.py: fp32, both cores, its attention
kernel, its matmuls and its compiled graph's fused elementwise ops), so the
TTFT row's gap is split by op group side by side.

Run it as is, and with the AVX2-only kernel variables to see an AVX2 EPYC's
kernels on an AVX-512 machine:

    .venv/bin/python bench/bench_decode_profile.py [--steps 16] [--dtype int4]
    .venv/bin/python bench/bench_decode_profile.py --prefill 1036 --cached 16 --steps 5 [--vllm]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 .venv/bin/python bench/bench_decode_profile.py

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import resource
import statistics
import time

from harness import progress, report

# torch op name → what it does in a decode step (or a prefill)
GROUPS = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::_weight_int4pack_mm_for_cpu", "aten::_weight_int8pack_mm",
               "mkldnn::_linear_pointwise"),
    "softmax_and_mask": ("aten::_softmax", "aten::softmax", "aten::masked_fill", "aten::masked_fill_", "aten::le", "aten::arange",
                         "aten::lt", "aten::gt", "aten::ge"),
    "kv_cache_write": ("aten::index_put_", "aten::_index_put_impl_", "aten::index", "aten::index_copy_", "aten::copy_"),
    "rope": ("aten::cat", "aten::neg"),
    "norm_and_swiglu": ("aten::pow", "aten::mean", "aten::rsqrt", "aten::silu", "aten::mul", "aten::mul_", "aten::add", "aten::add_",
                        "aten::to", "aten::_to_copy"),
    "embedding": ("aten::embedding", "aten::index_select"),
    # the prefill's kernel, and the log-sum-exp merge of a chunk after cached positions (runners.causal_after_cached)
    "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_attention_math", "aten::lerp",
                  "aten::sigmoid"),
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
            return w.packed.numel() * w.packed.element_size()
        return sum(t.numel() * t.element_size() for t in vars(w).values() if isinstance(t, torch.Tensor))

    weights = size(runner.weights.lm_head) + size(runner.weights.norm)
    for layer in runner.weights.layers:
        weights += sum(size(p.weight) for p in (layer.qkv, layer.o, layer.gate_up, layer.down)) + size(layer.input_norm) + size(layer.post_norm)
    cache = runner.cache
    kv = 2 * cache.layers * cache.kv_heads * cache.head_dim * length * cache.keys[0].element_size() * batch
    return weights + kv


def profile(runner, batch: int, steps: int, start: int) -> dict:
    tokens, adapters = [17] * batch, [None] * batch
    times = []
    for step in range(steps):
        begin = time.perf_counter()
        runner.decode(tokens, [start + step] * batch, adapters)
        times.append(time.perf_counter() - begin)
    entry = {"ms_per_step": round(statistics.median(times) * 1e3, 2)}
    return entry | by_group(lambda step: runner.decode(tokens, [start + steps + step] * batch, adapters), "step")


def by_group(run, unit: str, calls: int = 4) -> dict:
    """torch.profiler's self CPU time of `calls` runs of `run(i)`, per run: total, op count, share by group, top ops."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for index in range(calls):
            run(index)
    by_op = collections.Counter()
    ops = 0
    for event in prof.key_averages():
        by_op[event.key] += event.self_cpu_time_total / calls / 1e3  # ms per run
        ops += event.count
    total = sum(by_op.values())
    grouped = collections.Counter()
    for op, ms in by_op.items():
        group = next((g for g, names in GROUPS.items() if op in names), "other")
        grouped[group] += ms
    return {f"profiled_ms_per_{unit}": round(total, 2), f"ops_per_{unit}": ops // calls,
            "ms_by_group": {g: round(ms, 1) for g, ms in grouped.most_common()},
            "share_by_group": {g: round(ms / total, 3) for g, ms in grouped.most_common()},
            "top_ops_ms": {op: round(ms, 2) for op, ms in by_op.most_common(8)}}


def profile_prefill(runner, length: int, steps: int, cached: int = 0) -> dict:
    """One `length`-token prompt prefilled into slot 0 after its first `cached` tokens, `steps` times: ms each, page faults, GFLOP/s."""
    prompt = [100 + (7 * i) % 40000 for i in range(length)]  # token ids only: a prefill's cost does not depend on them
    runner.prefill(0, prompt, None)  # warm-up: cache growth, kernel choice, the heap's first growth; leaves the cached part in place
    times, cpu_times, faults = [], [], []
    for _ in range(steps):
        before, cpu_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
        begin = time.perf_counter()
        runner.prefill(0, prompt, None, start=cached)
        times.append(time.perf_counter() - begin)
        cpu_times.append(time.process_time() - cpu_before)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    # CPU time of all threads (spinning at barriers included): under load it moves less than the wall time
    entry = {"tokens": length, "cached_tokens": cached, "ms_per_prefill": round(statistics.median(times) * 1e3, 1), "ms_each": [round(t * 1e3, 1) for t in times],
             "cpu_ms_per_prefill": round(statistics.median(cpu_times) * 1e3, 1), "minor_page_faults_per_prefill": int(statistics.median(faults))}
    entry |= by_group(lambda _: runner.prefill(0, prompt, None, start=cached), "prefill", calls=2)
    config = runner.config
    qkv = config.hidden * (config.heads + 2 * config.kv_heads) * config.head_dim  # weights a token meets per layer
    rest = config.hidden * (config.heads * config.head_dim + 3 * runner.weights.layers[0].down.weight.shape[1])  # o, gate|up, down
    # every new token through every q|k|v, and through the rest of each layer but the last (llama.block's last_only);
    # the last position alone through the last layer's rest and the head
    macs = (length - cached) * (config.layers * qkv + (config.layers - 1) * rest) + rest + config.hidden * runner.weights.embed.shape[0]
    linear_ms = entry["ms_by_group"].get("matmul", 0.0)
    entry["linear_gflop"] = round(2 * macs / 1e9, 1)
    entry["linear_gflop_per_s"] = round(entry["linear_gflop"] / linear_ms * 1e3, 1) if linear_ms else None
    return entry


def vllm_prefill(length: int, steps: int) -> dict:
    """bench/vllm_prefill_profile.py's figures, run in vLLM's CPU environment (built on first use)."""
    import json
    import subprocess
    from pathlib import Path

    from llm_deeper.deploy import env as vllm_env
    from llm_deeper.deploy.launch import model_folder

    python = vllm_env.ensure_env(vllm_env.CPU_SPEC)
    script = Path(__file__).with_name("vllm_prefill_profile.py")
    done = subprocess.run([str(python), str(script), str(model_folder("smollm2-135m-instruct")), str(length), str(steps)],
                          capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"vLLM's prefill profile failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def on_a_thread(work):
    """`work()`'s result, run under inference_mode on a thread of its own, as the engine's loop runs
    (glibc gives such a thread its own malloc arena: the page faults differ from the main thread's)."""
    import threading

    import torch

    result, threads = {}, torch.get_num_threads()

    def run():
        try:
            torch.set_num_threads(threads)  # a new thread starts with OpenMP's own default (1 here), not the caller's
            with torch.inference_mode():
                result["value"] = work()
        except BaseException as error:  # raised again on the calling thread
            result["error"] = error

    thread = threading.Thread(target=run, name="prefill")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16, help="timed decode steps per batch size")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, the engine's default)")
    parser.add_argument("--prefill", type=int, default=0, help="profile the prefill of one prompt of this many tokens instead")
    parser.add_argument("--cached", type=int, default=0, help="with --prefill: tokens already cached before it (the served TTFT row: 16)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "int8", "int4"],
                        help="the weights `serve --dtype` loads (int8/int4: quantized projections, bf16 activations)")
    parser.add_argument("--vllm", action="store_true", help="with --prefill: profile vLLM's CPU build on the same prompt too, in its own environment")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's malloc thresholds as they are (an A/B of inference/memory.py)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from llm_deeper.inference import runners
    from llm_deeper.inference.quant import QUANTIZATIONS
    from llm_deeper.inference.runners import LlamaRunner
    from llm_deeper.models.loaders import load_model

    if args.default_malloc:
        runners.keep_freed_memory = lambda: False
    quant = args.dtype if args.dtype in QUANTIZATIONS else None
    loaded = load_model("smollm2-135m-instruct", dtype="bfloat16" if quant else args.dtype)
    if args.prefill:
        runner = LlamaRunner(loaded.model, 1, args.prefill + 1, quant=quant)
        entry = on_a_thread(lambda: profile_prefill(runner, args.prefill, args.steps, args.cached))
        progress(f"prefill: {entry}")
        sides = {"prefill": entry}
        if args.vllm:
            del runner, loaded  # vLLM's process gets the memory
            sides["vllm"] = vllm_prefill(args.prefill, args.steps)
            progress(f"vLLM prefill: {sides['vllm']}")
        report("prefill_profile", {"dtype": args.dtype, "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                                   "malloc": "glibc default" if args.default_malloc else "thresholds fixed (inference/memory.py)", **sides})
        return
    batches = [int(b) for b in args.batches.split(",")]
    runner = LlamaRunner(loaded.model, max(batches), 1024, quant=quant)
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
    report("decode_profile", {"dtype": args.dtype, "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                              "bandwidth_gb_s": round(bandwidth, 1), **rows})


if __name__ == "__main__":
    main()
