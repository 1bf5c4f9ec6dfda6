"""The one harness every benchmark in bench/ uses: time side by side, record the machine, run servers, print one JSON object.

A benchmark script imports it as `from harness import ...` (running
`python bench/bench_x.py` puts bench/ on the import path) and ends with
`report("x", figures)`, which prints `{"bench": "x", ..., "machine": {...}}`.

- `alternate(sides, rounds)`: warm every side up, then run the sides in
  alternating order (A B, B A, ...) so load from other processes falls on
  each alike; returns every side's results, for the script to take the
  median or the best.
- `machine()`: CPU model, AVX-512 (and its bf16 extension) or not, cores,
  load average and runnable tasks at the start and at the end, and the
  versions of the libraries whose speed is measured. On a shared machine the
  1-minute load average lags: runnable tasks say what ran at that moment.
- `OurServer` (`llm-deeper serve` in a process group of its own, as in
  production), `in_thread(engine)` (uvicorn in this process), `VllmServer`
  (vLLM in its own environment); each starts, answers /health, can be paused
  (SIGSTOP) while another side is measured, and stops.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
# The libraries whose speed a benchmark here measures (vLLM runs in its own environment; its version is in its log).
PACKAGES = ("torch", "transformers", "peft", "xgrammar", "mlx", "mlx-lm", "llama-cpp-python", "openai", "uvicorn")
T = TypeVar("T")


# -- timing ---------------------------------------------------------------------
def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def alternate(sides: dict[str, Callable[[], T]], rounds: int, warmup: int = 1,
              before: Callable[[str], None] | None = None) -> dict[str, list[T]]:
    """Each side's results over `rounds` rounds, in A B, B A, ... order, after `warmup` untimed calls of each.

    `before(name)` runs ahead of every call (for example: pause the other servers).
    """
    names = list(sides)
    for _ in range(warmup):  # first calls pay for allocation, kernel selection, caches
        for name in names:
            if before:
                before(name)
            sides[name]()
    results: dict[str, list[T]] = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            if before:
                before(name)
            results[name].append(sides[name]())
    return results


# -- the machine ----------------------------------------------------------------
def load() -> dict:
    """Load averages (1, 5, 15 min) and the tasks runnable right now (this process included)."""
    try:
        fields = Path("/proc/loadavg").read_text().split()
        runnable = int(fields[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        runnable = None
    return {"load_average": [round(x, 2) for x in os.getloadavg()], "runnable_tasks": runnable}


def cpu() -> dict:
    """The CPU model and the instruction sets that decide which kernels run."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    # Variables that cap the kernels (the AVX2-only check sets them): an avx512 CPU under them runs as an avx2 one.
    caps = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS") if k in os.environ}
    return {"cpu": model, "avx512": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_bf16" in flags,
            "cores": cores, "usable_cores": usable, **({"kernel_caps": caps} if caps else {})}


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


LOAD_AT_START = load()  # taken when the script imports the harness, before any work


def machine() -> dict:
    """What the figures ran on: CPU, cores, load at the start and now, torch threads, library versions."""
    torch = sys.modules.get("torch")  # only if the benchmark imported it: the harness itself stays light
    threads = {"torch_threads": torch.get_num_threads()} if torch is not None else {}
    return {**cpu(), **threads, "at_start": LOAD_AT_START, "at_end": load(), "versions": versions()}


def report(name: str, figures: dict, **json_options: Any) -> None:
    """Print the benchmark's one JSON object: its name under "bench", its figures, and the machine."""
    print(json.dumps({"bench": name, **figures, "machine": machine()}, ensure_ascii=False, default=str, **json_options), flush=True)


def skipped(name: str, reason: str) -> None:
    """The one JSON object of a benchmark that cannot run here (a missing checkout, library or file)."""
    report(name, {"skipped": reason})


def progress(message: str) -> None:
    """A line for the person watching (stderr: stdout carries only the JSON object)."""
    print(message, file=sys.stderr, flush=True)


# -- servers ----------------------------------------------------------------------
def pause(process: subprocess.Popen | None, paused: bool) -> None:
    """Stop (SIGSTOP) or resume a server's process group: an idle vLLM's CPU workers keep polling,
    which took the cores from our server at load 20 (RESULTS.md)."""
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGSTOP if paused else signal.SIGCONT)


class OurServer:
    """`llm-deeper serve FLAGS` in its own process group on a free loopback port: `with OurServer("--dtype", "bfloat16") as server:`."""

    def __init__(self, *flags: str, timeout_s: float = 300):
        self.flags, self.timeout_s = list(flags), timeout_s
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False)

    def start(self) -> "OurServer":
        from llm_deeper.ports import free_port
        from llm_deeper.serve.background import wait_until_healthy

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self.process = subprocess.Popen([sys.executable, "-m", "llm_deeper", "serve", "--port", str(self.port), *self.flags],
                                        cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_until_healthy(self.url, self.process, timeout=self.timeout_s)
        except RuntimeError as error:
            self.stop()
            raise RuntimeError(f"{error}\n{Path(self.log.name).read_text()[-3000:]}") from None
        return self

    def model(self) -> str:
        """The name the server answers to (the first in /v1/models)."""
        import urllib.request

        with urllib.request.urlopen(self.base_url + "/models", timeout=10) as reply:
            return json.load(reply)["data"][0]["id"]

    def health(self) -> dict:
        """The server's /health object (its engine's counters)."""
        import urllib.request

        with urllib.request.urlopen(self.url + "/health", timeout=10) as reply:
            return json.load(reply)

    def pause(self, paused: bool) -> None:
        pause(self.process, paused)

    def stop(self) -> None:
        """SIGTERM to the group (resumed first if paused), then SIGKILL after 60 s."""
        if self.process is not None and self.process.poll() is None:
            pause(self.process, False)
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def __enter__(self) -> "OurServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def in_thread(engine):
    """uvicorn serving `engine` in a thread of this process (a context manager with `.url`): for load tests on tiny models."""
    from llm_deeper.serve.app import create_app
    from llm_deeper.serve.background import BackgroundServer

    return BackgroundServer(create_app(engine))


def vllm_server(**config: Any):
    """vLLM serving `VllmConfig(**config)` from its own environment, started (`.base_url`, `.process`, `.stop()`)."""
    from llm_deeper.deploy.launch import VllmConfig, VllmServer

    return VllmServer(VllmConfig(**config)).start()
