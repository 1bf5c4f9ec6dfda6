"""Eager vs torch.compile'd decode step of the engine, side by side, against the memory-bandwidth limit.

Default model; for each dtype, two runners on the same weights (eager, and
compiled with `LlamaRunner.compile()`), decode steps of 1 and 8 rows timed in
alternating blocks, so load from other processes hits both alike. The limit:
a decode step reads every weight once, so tokens/s per row cannot beat
(memory bandwidth) / (weight bytes); the bandwidth is measured here by summing
a 1 GB tensor that no cache holds.

    .venv/bin/python bench/bench_decode_compile.py [--dtypes float32,bfloat16,int4] [--steps 16] [--rounds 3]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

from harness import alternate, progress, report


def bandwidth_gb_s() -> float:
    import torch

    data = torch.ones(256 * 1024 * 1024)  # 1 GiB of fp32
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - start)
    return data.numel() * 4 / best / 1e9


def weight_bytes(runner) -> int:
    """Bytes a decode step reads: every projection, norm and the output head (embedding rows are negligible)."""
    import torch

    def size(w) -> int:
        if isinstance(w, torch.Tensor):
            return w.numel() * w.element_size()
        return sum(t.numel() * t.element_size() for t in vars(w).values() if isinstance(t, torch.Tensor))

    total = size(runner.weights.lm_head) + size(runner.weights.norm)
    for layer in runner.weights.layers:
        total += sum(size(p.weight) for p in (layer.qkv, layer.o, layer.gate_up, layer.down))
        total += size(layer.input_norm) + size(layer.post_norm)
    return total


def step_seconds(runner, batch: int, steps: int, start_position: int) -> float:
    tokens = [17] * batch
    adapters = [None] * batch
    begin = time.perf_counter()
    for step in range(steps):
        runner.decode(tokens, [start_position + step] * batch, adapters)
    return (time.perf_counter() - begin) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", default="float32,bfloat16,int4")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", default="1,8")
    args = parser.parse_args()

    import torch

    from llm_deeper.inference.quant import QUANTIZATIONS
    from llm_deeper.inference.runners import LlamaRunner
    from llm_deeper.models.loaders import load_model

    batches = [int(b) for b in args.batches.split(",")]
    result = {"bandwidth_gb_s": round(bandwidth_gb_s(), 1), "dtypes": {}}
    prompt = list(range(100, 164))
    for dtype in args.dtypes.split(","):
        quant = dtype if dtype in QUANTIZATIONS else None
        loaded = load_model("smollm2-135m-instruct", dtype="bfloat16" if quant else dtype)
        eager = LlamaRunner(loaded.model, max(batches), 1024, quant=quant)
        compiled = LlamaRunner(loaded.model, max(batches), 1024, quant=quant)
        compile_seconds = compiled.compile()
        for runner in (eager, compiled):
            for slot in range(max(batches)):
                runner.prefill(slot, prompt, None)
        position = {"eager": len(prompt), "compiled": len(prompt)}  # each runner decodes on from where it stopped

        def steps(name: str, runner, batch: int) -> float:
            seconds = step_seconds(runner, batch, args.steps, position[name])
            position[name] += args.steps
            return seconds

        best = {}
        for batch in batches:
            runs = alternate({name: (lambda name=name, runner=runner: steps(name, runner, batch))
                              for name, runner in (("eager", eager), ("compiled", compiled))}, args.rounds)
            best.update({(name, batch): min(seconds) for name, seconds in runs.items()})
        nbytes = weight_bytes(eager)
        limit = result["bandwidth_gb_s"] * 1e9 / nbytes
        entry = {"compile_seconds": round(compile_seconds, 1), "weight_mb_per_step": round(nbytes / 1e6, 1),
                 "bandwidth_limit_tokens_per_s_1_row": round(limit, 1)}
        for batch in batches:
            e, c = best[("eager", batch)], best[("compiled", batch)]
            entry[f"batch_{batch}"] = {"eager_ms_per_step": round(e * 1e3, 2), "compiled_ms_per_step": round(c * 1e3, 2),
                                       "eager_tokens_per_s": round(batch / e, 1), "compiled_tokens_per_s": round(batch / c, 1),
                                       "speedup": round(e / c, 2)}
        result["dtypes"][dtype] = entry
        progress(json.dumps({dtype: entry}))  # in case a later dtype is cut short
        del eager, compiled, loaded
    report("decode_compile", result, indent=1)


if __name__ == "__main__":
    main()
