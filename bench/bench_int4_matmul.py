"""The int4 decode matmul, kernel by kernel: GB/s of 4-bit weights read, on the default model's real shapes.

A decode step of `--dtype int4` multiplies 1 row (one stream) or a few (a batch) by every
projection of the 30 layers: q|k|v fused (960×576), o (576×576), gate|up fused (3072×576)
and down (576×1536), 66 MB of weights with their bf16 scales and minimums, more than this
CPU's L3 cache holds. Each pass here runs all 120 matmuls in the step's order on 30 layers'
worth of distinct random Q4_1 weights, so they stream from memory as in the engine, and
counts time per shape (best of `--rounds` passes, thread CPU time on 1 thread so that a busy
machine's other processes do not count; wall time with more threads). Candidates:

- `torch`: `_weight_int4pack_mm_for_cpu`, what quant.Int4Weight runs;
- `inductor`: the same matmul in plain torch ops over a uint8 [out, in/2] nibble layout
  (unpack with & 0xF and >> 4, per-group scale and minimum), torch.compile'd: inductor fuses it
  into one vectorized C++ reduction without a dequantized weight in memory;
- `ours`: a hand-written AVX512-BF16 kernel (bench/q4_1_matmul.c, built here with gcc into a
  temporary folder; skipped without AVX512-BF16 or a compiler), called through ctypes.

Each candidate's result is checked against the dequantized fp32 matmul first (max abs error,
printed). GB/s = (N·K/2 + N·K/32·4 bytes) / seconds. Inductor's artifacts and the built kernel go
to a temporary folder removed at the end (not inductor's shared /tmp default, unless
TORCHINDUCTOR_CACHE_DIR says so).

    .venv/bin/python bench/bench_int4_matmul.py [--rows 1,8] [--threads 1,2] [--rounds 5]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from harness import progress, report

SHAPES = {"qkv": (960, 576), "o": (576, 576), "gate_up": (3072, 576), "down": (576, 1536)}  # [out, in], default model
LAYERS = 30


def weight_bytes(out: int, inputs: int) -> int:
    return out * inputs // 2 + out * (inputs // 32) * 4  # nibbles, bf16 scale and minimum per group of 32


def inductor_matmul(x, packed, scale, minimum):
    """y = Σ_g scale · Σ q·x + minimum · Σ x over packed [N, K/2] (byte j of a group: q[j] | q[j+16] << 4), in torch ops."""
    import torch

    rows, inputs = x.shape
    groups = inputs // 32
    xf = x.float().view(rows, 1, groups, 2, 16)
    w = packed.view(1, packed.shape[0], groups, 16).to(torch.int32)  # widening first vectorized best (5.2 vs 4.2 GB/s as uint8)
    low, high = (w & 15).float(), (w >> 4).float()
    y = ((low * xf[..., 0, :] + high * xf[..., 1, :]) * scale.float().view(1, -1, groups, 1)).sum((-2, -1))
    return (y + (xf.sum((-2, -1)) * minimum.float().view(1, -1, groups)).sum(-1)).to(x.dtype)


def pack_ours(q):
    """q [N, K] (0..15) in q4_1_matmul.c's layout: four groups to 64 bytes, a last pair to 32 (see its header)."""
    import torch

    rows, inputs = q.shape
    groups = inputs // 32
    quads = groups // 4
    g = q.view(rows, groups, 32).to(torch.int16)
    blocks = []
    if quads:
        four = g[:, :4 * quads].view(rows, quads, 4, 32)
        words = four[:, :, 0] | (four[:, :, 1] << 4) | (four[:, :, 2] << 8) | (four[:, :, 3] << 12)  # [rows, quads, 32]
        blocks.append(words.view(torch.uint8).reshape(rows, quads * 64))  # little-endian words: their bytes in order
    if groups % 4:
        pair = g[:, 4 * quads:].to(torch.uint8)
        blocks.append((pair[:, 0] | (pair[:, 1] << 4)).reshape(rows, 32))
    return torch.cat(blocks, dim=1).contiguous()


def our_kernel(folder=None):
    """The C function of bench/q4_1_matmul.c, built with gcc now into `folder` (ctypes), or None where it cannot build or run."""
    import ctypes
    import shutil
    import subprocess
    from pathlib import Path

    flags = {"avx512f", "avx512bw", "avx512vl", "avx512_bf16"}
    try:
        cpu = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split(":", 1)[1].split()
    except (OSError, StopIteration):
        return None
    if not flags <= set(cpu) or shutil.which("gcc") is None:
        return None
    library = Path(folder or tempfile.mkdtemp(prefix="q4_1_matmul-")) / "q4_1_matmul.so"
    subprocess.run(["gcc", "-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-fopenmp", "-shared", "-fPIC",
                    str(Path(__file__).with_name("q4_1_matmul.c")), "-o", str(library)], check=True)
    function = ctypes.CDLL(str(library)).q4_1_matmul
    function.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                         ctypes.c_int64, ctypes.c_void_p]
    function.restype = None
    return function


def build(candidate: str, weight, kernel=None):
    """x [rows, in] bf16 → x @ weightᵀ as the candidate computes it, on the weight stored its way."""
    import torch

    from llm_deeper.inference.quant import Int4Weight, q4_1_groups

    q, scale, low = q4_1_groups(weight)
    if candidate == "torch":
        return Int4Weight(weight).matmul
    if candidate == "inductor":
        halves = q.view(weight.shape[0], -1, 2, 16)
        packed = (halves[:, :, 0] | (halves[:, :, 1] << 4)).reshape(weight.shape[0], -1).contiguous()
        torch._dynamo.config.recompile_limit = 64  # one graph per shape and row count (8), never the eager fallback
        compiled = build.compiled = getattr(build, "compiled", None) or torch.compile(inductor_matmul, dynamic=False)
        args = (packed, scale.bfloat16(), low.bfloat16())
        return lambda x: compiled(x, *args)
    packed, scale, minimum = pack_ours(q.reshape(weight.shape)), scale.bfloat16().contiguous(), low.bfloat16().t().contiguous()

    def ours(x):
        y = torch.empty(x.shape[0], packed.shape[0], dtype=torch.bfloat16)
        kernel(x.data_ptr(), x.shape[0], x.shape[1], packed.data_ptr(), scale.data_ptr(), minimum.data_ptr(), packed.shape[0], y.data_ptr())
        return y
    return ours


def measure(candidate: str, rows_list, threads_list, rounds: int, scratch: str) -> dict:
    import torch

    from llm_deeper.inference.quant import q4_1_groups

    kernel = our_kernel(scratch) if candidate == "ours" else None
    if candidate == "ours" and kernel is None:
        return {"skipped": "no AVX512-BF16 here, or no gcc"}
    torch.manual_seed(0)
    layers, errors = [], {}
    with torch.inference_mode():
        for index in range(LAYERS):
            layer = {}
            for name, (out, inputs) in SHAPES.items():
                weight = torch.randn(out, inputs) * 0.02
                layer[name] = build(candidate, weight, kernel)
                if index == 0:  # the numbers: against the dequantized fp32 weight
                    q, scale, low = q4_1_groups(weight)
                    exact = (q.float() * scale.bfloat16().float()[..., None] + low.bfloat16().float()[..., None]).view(out, inputs)
                    x = torch.randn(3, inputs).bfloat16()
                    reference = x.float() @ exact.t()
                    errors[name] = round((layer[name](x).float() - reference).abs().max().item() / reference.abs().max().item(), 6)
            layers.append(layer)
        result = {"max_abs_error_relative_to_max_output": errors}
        for threads in threads_list:
            torch.set_num_threads(threads)
            clock = time.thread_time if threads == 1 else time.perf_counter
            for rows in rows_list:
                inputs = {name: torch.randn(rows, k).bfloat16() for name, (_, k) in SHAPES.items()}
                best = {name: float("inf") for name in SHAPES}
                for _ in range(rounds + 1):  # the first pass warms up (and compiles, for inductor)
                    spent = dict.fromkeys(SHAPES, 0.0)
                    for layer in layers:
                        for name in SHAPES:
                            start = clock()
                            layer[name](inputs[name])
                            spent[name] += clock() - start
                    best = {name: min(best[name], spent[name]) for name in SHAPES}
                total = sum(best.values())
                result[f"rows_{rows}_threads_{threads}"] = {
                    **{name: {"us": round(best[name] / LAYERS * 1e6, 1), "gb_s": round(weight_bytes(*SHAPES[name]) * LAYERS / best[name] / 1e9, 2)}
                       for name in SHAPES},
                    "all_layers_ms": round(total * 1e3, 2),
                    "all_layers_gb_s": round(sum(weight_bytes(*s) for s in SHAPES.values()) * LAYERS / total / 1e9, 2)}
                progress(f"{candidate}: {rows} row(s), {threads} thread(s): {total * 1e3:.2f} ms for the 120 matmuls")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="1,8", help="rows of x (1: one stream; 8: a batch of 8)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--candidates", default="torch,inductor,ours")
    args = parser.parse_args()
    rows_list = [int(r) for r in args.rows.split(",")]
    threads_list = [int(t) for t in args.threads.split(",")]
    results = {"layers": LAYERS, "shapes": {k: list(v) for k, v in SHAPES.items()},
               "weights_mb": round(sum(weight_bytes(*s) for s in SHAPES.values()) * LAYERS / 1e6, 1)}
    with tempfile.TemporaryDirectory(prefix="bench-int4-") as scratch:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(scratch, "inductor"))  # nothing touched inductor yet
        for candidate in args.candidates.split(","):
            results[candidate] = measure(candidate, rows_list, threads_list, args.rounds, scratch)
    report("int4_matmul", results)


if __name__ == "__main__":
    main()
