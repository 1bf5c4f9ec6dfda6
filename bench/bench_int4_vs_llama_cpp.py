"""Our int4 engine vs llama.cpp on the same Q4_1 GGUF: one stream, and 8 requests at once.

Both read the embedded default model's GGUF (Q4_1 projections, Q8_0
embeddings): llama.cpp runs the file itself through llama-cpp-python; our
engine loads it with `--dtype int4` (Q4_1-layout groups that reproduce the
file's projections exactly, bf16 activations). Greedy, EOS ignored, 128 new
tokens each, the same chat prompt. One stream: decode tokens/s (first to last
token). 8 requests: total tokens / wall time; our engine decodes them in one
batch, llama-cpp-python's `Llama` serves one request at a time (its Python
API has no continuous batching), which is what its users get. Sides alternate
(harness.alternate), best run of each counts.

llama-cpp-python is the project's `llamacpp` extra and compiles llama.cpp at
install (~4 min on 2 cores). When it is missing, this script installs it first
into the running interpreter's environment (only the extra's requirement, with
constraints.txt; the project's own install is left alone) and reports how long
that took under `install_seconds`.

    .venv/bin/python bench/bench_int4_vs_llama_cpp.py [--tokens 128] [--rounds 2] [--no-install]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from harness import REPO, alternate, progress, report, skipped

PROMPT = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]
CLIENTS = 8


def extra_requirements(name: str = "llamacpp") -> list[str]:
    """The requirements of one optional extra, as pyproject.toml lists them."""
    import tomllib

    with open(REPO / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["optional-dependencies"][name])


def ensure_llama_cpp() -> float | None:
    """Install the llamacpp extra when `llama_cpp` is missing; the seconds it took (None: it was there)."""
    try:
        import llama_cpp  # noqa: F401

        return None
    except ImportError:
        pass
    progress(f"installing {', '.join(extra_requirements())} (compiles llama.cpp: minutes)...")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"), *extra_requirements()], check=True,
                   env={**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2)})
    return time.perf_counter() - start


def llama_cpp_model(path: str, threads: int):
    from llama_cpp import Llama

    return Llama(model_path=path, n_ctx=2048, n_threads=threads, n_batch=512, verbose=False)


def llama_cpp_stream(llm, prompt_ids: list[int], tokens: int) -> tuple[float, int]:
    """(decode tokens/s from the first to the last token, tokens) of one greedy request."""
    llm.reset()
    stamps = []
    for token in llm.generate(prompt_ids, temp=0.0, top_k=1, reset=True):
        stamps.append(time.perf_counter())
        if len(stamps) == tokens:
            break
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), len(stamps)


def llama_cpp_many(llm, prompt_ids: list[int], tokens: int, clients: int) -> float:
    """Total tokens/s of `clients` requests, one after another (the Python API's way)."""
    start = time.perf_counter()
    total = sum(llama_cpp_stream(llm, prompt_ids, tokens)[1] for _ in range(clients))
    return total / (time.perf_counter() - start)


def engine_stream(engine, tokens: int) -> tuple[float, int]:
    from llm_deeper.inference.sampling import SamplingConfig

    stamps = [time.perf_counter() for _ in engine.stream(PROMPT, SamplingConfig(max_new_tokens=tokens, ignore_eos=True))]
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), len(stamps)


def engine_many(engine, tokens: int, clients: int) -> float:
    from llm_deeper.inference.sampling import SamplingConfig

    start = time.perf_counter()
    requests = [engine.submit(PROMPT, SamplingConfig(max_new_tokens=tokens, ignore_eos=True)) for _ in range(clients)]
    total = sum(len(r.result().token_ids) for r in requests)
    return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per request")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best counts)")
    parser.add_argument("--no-install", action="store_true", help="report 'skipped' instead of installing llama-cpp-python")
    args = parser.parse_args()

    install_seconds = None
    if args.no_install:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            skipped("int4_vs_llama_cpp", "llama-cpp-python is not installed (pip install -e '.[llamacpp]', or run without --no-install)")
            return
    else:
        install_seconds = ensure_llama_cpp()

    import torch

    from llm_deeper.inference.engine import Engine
    from llm_deeper.models.embedded import gguf_path
    from llm_deeper.models.registry import REGISTRY

    path = str(gguf_path(REGISTRY["smollm2-135m-instruct"]))  # the file our int4 weights are converted from
    threads = torch.get_num_threads()
    engine = Engine.load("smollm2-135m-instruct", dtype="int4", max_batch=CLIENTS)
    llm = llama_cpp_model(path, threads)
    prompt_ids = engine.encode(PROMPT)
    try:
        one = alternate({"ours_int4": lambda: engine_stream(engine, args.tokens)[0],
                         "llama_cpp": lambda: llama_cpp_stream(llm, prompt_ids, args.tokens)[0]}, rounds=args.rounds)
        progress(f"one stream: {one}")
        many = alternate({"ours_int4": lambda: engine_many(engine, args.tokens, CLIENTS),
                          "llama_cpp": lambda: llama_cpp_many(llm, prompt_ids, args.tokens, CLIENTS)}, rounds=args.rounds)
        progress(f"{CLIENTS} requests: {many}")
    finally:
        engine.close()
    best = {"one_stream_tokens_per_s": {k: round(max(v), 1) for k, v in one.items()},
            f"{CLIENTS}_requests_tokens_per_s": {k: round(max(v), 1) for k, v in many.items()}}
    report("int4_vs_llama_cpp", {
        "gguf": path, "tokens": args.tokens, "rounds": args.rounds, "threads": threads,
        "install_seconds": round(install_seconds, 1) if install_seconds is not None else "already installed",
        **best,
        "ours_over_llama_cpp": {row: round(v["ours_int4"] / v["llama_cpp"], 2) for row, v in best.items()},
        "runs": {"one_stream": one, f"{CLIENTS}_requests": many},
    })


if __name__ == "__main__":
    main()
