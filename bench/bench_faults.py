"""Fault suite: re-runs issue 18's probe against the server, TinyGPT training and the calculator tool.

Loopback only, bounded in count and time (each probe has its own limit; the
whole suite takes a few minutes on 2 cores). What it does:

- body sizes: chat requests of 0.1-20 MB while /health is polled every 50 ms
  (status, the slowest /health answer, the server's memory growth);
- `$ref` that loops or points to nothing, under auto / required / named tool
  choice, whole and streamed (statuses, and whether /metrics counted them);
- disconnects: streams closed mid-way, then the time until no slot is held; the same for
  non-streamed requests whose client hangs up (issue 26);
- stop strings (issue 26): 20,000 of them (refused), and the most allowed (16 × 128 characters,
  n 4) with a plain 16-token request beside it, against that request alone;
- exposure (issue 26): a foreign Host header, /v1/models roots, `serve --api-key ""`;
- queue overflow: 64 concurrent requests against 2 slots + 4 queued, and one
  request whose `n` can never fit;
- SIGTERM with streams in flight: seconds from the signal to the exit, and
  how each stream ended;
- SIGKILLs during TinyGPT training, then `--resume`: errors, leftover
  temporary files, weights compared with an uninterrupted run;
- hostile calculator input through `llm-deeper tools call`: seconds per call
  and how it ended (answer, error line, or killed at the limit).

    .venv/bin/python bench/bench_faults.py [--model smollm2-135m-instruct] [--kills 4] [--quick]

`--quick` uses a tiny random model (the HTTP probes do not need a real one).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import REPO, OurServer, report

CLI = [sys.executable, "-m", "llm_deeper"]
HI = [{"role": "user", "content": "hi"}]


# -- the server ----------------------------------------------------------------
class Server:
    """`llm-deeper serve` through the bench harness (its own process group, a free loopback port), plus what the probes read."""

    def __init__(self, model: str, *flags: str):
        self.server = OurServer("--model", model, *flags).start()
        self.url, self.process = self.server.url, self.server.process
        self.model = self.server.model()  # the name it answers to

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def metric(self, route: str, status: int) -> int:
        import httpx

        prefix = f'llm_deeper_requests_total{{route="{route}",status="{status}"}} '
        for line in httpx.get(self.url + "/metrics").text.splitlines():
            if line.startswith(prefix):
                return int(line[len(prefix):])
        return 0

    def stop(self) -> None:
        self.server.stop()


class HealthPoller:
    """GET /health every 50 ms in a thread; the slowest answer (or a failure) while it runs."""

    def __init__(self, url: str):
        self.url, self.worst, self.failures, self._stop = url, 0.0, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                httpx.get(self.url + "/health", timeout=60).raise_for_status()
            except Exception:
                self.failures += 1
            self.worst = max(self.worst, time.perf_counter() - start)
            self._stop.wait(0.05)

    def __enter__(self) -> "HealthPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(70)


def body_sizes(server: Server, sizes_mb: list[float]) -> list[dict]:
    import httpx

    out = []
    for size in sizes_mb:
        content = "word " * int(size * 1e6 / 5)
        before = server.rss_mb()
        with HealthPoller(server.url) as poller:
            start = time.perf_counter()
            try:
                reply = httpx.post(server.url + "/v1/chat/completions", timeout=120,
                                   json={"model": server.model, "messages": [{"role": "user", "content": content}], "max_tokens": 1})
                status, error = reply.status_code, (reply.json().get("error") or {}).get("code")
            except httpx.HTTPError as exc:
                status, error = None, type(exc).__name__
            seconds = time.perf_counter() - start
        out.append({"mb": size, "status": status, "error_code": error, "seconds": round(seconds, 3),
                    "health_worst_s": round(poller.worst, 3), "health_failures": poller.failures,
                    "rss_growth_mb": round(server.rss_mb() - before, 1)})
    return out


def ref_cycles(server: Server) -> dict:
    import httpx

    schemas = {"ref-root": {"$ref": "#"}, "ref-missing": {"type": "object", "properties": {"a": {"$ref": "#/$defs/none"}}},
               "ref-cycle": {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}},
                             "$defs": {"x": {"$ref": "#/$defs/y"}, "y": {"$ref": "#/$defs/x"}}}}
    choices = {"auto": "auto", "required": "required", "named": {"type": "function", "function": {"name": "f"}}}
    before = {status: server.metric("/v1/chat/completions", status) for status in (400, 500)}
    statuses: dict[str, int] = {}
    for schema in schemas.values():
        for choice in choices.values():
            for stream in (False, True):
                body = {"model": server.model, "messages": HI, "max_tokens": 4, "stream": stream, "tool_choice": choice,
                        "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}]}
                try:
                    key = str(httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60).status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                statuses[key] = statuses.get(key, 0) + 1
    counted = {str(status): server.metric("/v1/chat/completions", status) - before[status] for status in (400, 500)}
    return {"requests": sum(statuses.values()), "statuses": statuses, "counted_in_metrics": counted}


def disconnects(server: Server, count: int) -> dict:
    import httpx

    body = {"model": server.model, "messages": HI, "max_tokens": 2000, "stream": True, "ignore_eos": True}
    for _ in range(count):
        with httpx.Client(timeout=60) as http, http.stream("POST", server.url + "/v1/chat/completions", json=body) as stream:
            lines = stream.iter_lines()
            for _ in range(3):
                next(lines)
    start = time.perf_counter()
    while httpx.get(server.url + "/health").json()["running"] and time.perf_counter() - start < 30:
        time.sleep(0.02)
    return {"streams_closed": count, "slots_free_after_s": round(time.perf_counter() - start, 3),
            "running_after": httpx.get(server.url + "/health").json()["running"]}


def stop_strings(server: Server) -> dict:
    """Issue 26: a flood of stop strings is refused; the most we allow does not slow a request beside it."""
    import httpx

    def timed(body: dict) -> tuple[int, float]:
        start = time.perf_counter()
        reply = httpx.post(server.url + "/v1/chat/completions", json={"model": server.model, "messages": HI, **body}, timeout=300)
        return reply.status_code, round(time.perf_counter() - start, 3)

    flood = timed({"stop": [f"q{i}" for i in range(20_000)], "n": 4, "max_tokens": 32, "ignore_eos": True})
    alone = timed({"max_tokens": 16, "ignore_eos": True})
    widest = {"stop": [f"{i:03d}" + "z" * 125 for i in range(16)], "n": 4, "max_tokens": 32, "ignore_eos": True}  # 16 × 128 chars
    no_stops = {"n": 4, "max_tokens": 32, "ignore_eos": True}  # the control: the same batch without stops

    def beside(big: dict) -> tuple[tuple[int, float], float]:
        results: dict = {}
        thread = threading.Thread(target=lambda: results.update(big=timed(big)))
        thread.start()
        time.sleep(0.2)
        neighbour = timed({"max_tokens": 16, "ignore_eos": True})
        thread.join()
        return results["big"], neighbour[1]

    with_stops, neighbour_stops = beside(widest)
    without, neighbour_plain = beside(no_stops)
    return {"flood_20000_status_s": flood, "plain_16_tokens_alone_s": alone[1],
            "widest_allowed_status_s": with_stops, "plain_16_tokens_beside_it_s": neighbour_stops,
            "same_without_stops_status_s": without, "plain_16_tokens_beside_that_s": neighbour_plain}


def plain_disconnects(server: Server, count: int) -> dict:
    """Issue 26: non-streamed requests whose client leaves mid-reply free their slots (checked on a timer)."""
    import httpx

    body = {"model": server.model, "messages": HI, "max_tokens": 2000, "ignore_eos": True}
    for _ in range(count):
        try:
            httpx.post(server.url + "/v1/chat/completions", json=body, timeout=1.0)
        except httpx.TimeoutException:
            pass  # we hung up
    start = time.perf_counter()
    while httpx.get(server.url + "/health").json()["running"] and time.perf_counter() - start < 60:
        time.sleep(0.02)
    return {"requests_abandoned": count, "slots_free_after_s": round(time.perf_counter() - start, 3),
            "running_after": httpx.get(server.url + "/health").json()["running"]}


def exposure(server: Server) -> dict:
    """Issue 26: a foreign Host header (DNS rebinding) is refused; /v1/models shows names, not paths."""
    import httpx

    rebinding = httpx.get(server.url + "/v1/models", headers={"Host": "evil.example"})
    models = httpx.get(server.url + "/v1/models").json()["data"]
    empty_key = subprocess.run([*CLI, "serve", "--api-key", "", "--model", "unused"], cwd=REPO, capture_output=True, text=True, timeout=120)
    return {"foreign_host_status": rebinding.status_code, "model_roots": [m["root"] for m in models],
            "serve_with_empty_key_rc": empty_key.returncode, "message": empty_key.stderr.strip()[:120]}


def queue_overflow(server: Server, clients: int) -> dict:
    import asyncio

    import httpx

    async def run() -> list[tuple[int, float]]:
        async with httpx.AsyncClient(timeout=120) as http:
            async def one(i: int):
                start = time.perf_counter()
                reply = await http.post(server.url + "/v1/chat/completions", json={"model": server.model, "messages": HI, "max_tokens": 8, "seed": i})
                return reply.status_code, time.perf_counter() - start

            return await asyncio.gather(*(one(i) for i in range(clients)))

    results = asyncio.run(run())
    statuses: dict[str, int] = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    refused = [seconds for status, seconds in results if status == 429]
    never = httpx.post(server.url + "/v1/chat/completions", json={"model": server.model, "messages": HI, "n": 16, "max_tokens": 1}, timeout=60)
    return {"clients": clients, "statuses": statuses, "429_seconds": [round(min(refused), 3), round(max(refused), 3)] if refused else None,
            "n16_status": never.status_code, "n16_message": never.json()["error"]["message"] if never.status_code >= 400 else None}


def sigterm(server: Server, streams: int) -> dict:
    import httpx

    body = {"model": server.model, "messages": HI, "max_tokens": 4000, "stream": True, "ignore_eos": True}
    endings: list[str] = []

    def read_stream(started: threading.Event) -> None:
        ending = "no end"
        try:
            with httpx.Client(timeout=120) as http, http.stream("POST", server.url + "/v1/chat/completions", json=body) as reply:
                for line in reply.iter_lines():
                    started.set()
                    if line.startswith("data: {"):
                        event = json.loads(line[6:])
                        if "error" in event:
                            ending = "error:" + str(event["error"]["code"])
                        elif event["choices"] and event["choices"][0]["finish_reason"]:
                            ending = "finish:" + event["choices"][0]["finish_reason"]
                    elif line == "data: [DONE]":
                        ending += "+DONE"
        except httpx.HTTPError as exc:
            ending = "cut:" + type(exc).__name__
        finally:
            started.set()
        endings.append(ending)

    events = [threading.Event() for _ in range(streams)]
    threads = [threading.Thread(target=read_stream, args=(event,), daemon=True) for event in events]
    for thread in threads:
        thread.start()
    for event in events:
        event.wait(60)
    start = time.perf_counter()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        code = "still running after 120 s"
    exit_s = time.perf_counter() - start
    for thread in threads:
        thread.join(30)
    summary: dict[str, int] = {}
    for ending in endings:
        summary[ending] = summary.get(ending, 0) + 1
    return {"streams": streams, "exit_after_s": round(exit_s, 2), "exit_code": code, "stream_endings": summary}


# -- TinyGPT kills then --resume -------------------------------------------------
STEPS = 120  # optimizer steps of the small run that is killed and resumed
def training_kills(kills: int, seed: int) -> dict:
    import torch

    from llm_deeper.train.tinygpt.checkpoint import load_checkpoint

    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").glob("*.md")))[:200_000]
    flags = ["--tokenizer", "char", "--layers", "1", "--heads", "2", "--embd", "32", "--context", "32", "--steps", str(STEPS),
             "--batch-size", "8", "--warmup", "5", "--eval-every", "0", "--checkpoint-every", "5", "--threads", "1", "--seed", "3"]
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text(text, encoding="utf-8")
        base = [*CLI, "tinygpt", "train", "--text", str(corpus), *flags]
        start = time.perf_counter()
        whole = subprocess.run([*base, "--out", f"{tmp}/whole"], cwd=REPO, capture_output=True, text=True, timeout=600)
        whole_s = time.perf_counter() - start
        run, errors, killed = f"{tmp}/killed", [], 0
        for number in range(kills):
            process = subprocess.Popen([*base, "--out", run, *(["--resume"] if Path(run, "checkpoint.pt").exists() else [])], cwd=REPO,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                process.wait(timeout=rng.uniform(0.2, 0.7) * whole_s)
                if process.returncode:
                    errors.append(process.stderr.read().strip().splitlines()[-1:])
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                killed += 1
        done = Path(run, "checkpoint.pt").exists() and load_checkpoint(run)["step"] >= STEPS  # a kill can land after the last save
        if not done:
            final = subprocess.run([*base, "--out", run, *(["--resume"] if Path(run, "checkpoint.pt").exists() else [])], cwd=REPO,
                                   capture_output=True, text=True, timeout=600)
            if final.returncode:
                errors.append(final.stderr.strip().splitlines()[-1:])
        leftovers = sorted(p.name for p in Path(run).glob("*.tmp")) + sorted(p.name for p in Path(run).glob(".*.tmp"))
        same = None
        if whole.returncode == 0 and not errors:
            a, b = load_checkpoint(f"{tmp}/whole")["model"], load_checkpoint(run)["model"]
            same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        return {"kills": killed, "runs_finished_before_kill": kills - killed, "errors": errors, "leftover_tmp_files": len(set(leftovers)),
                "weights_bit_identical": same, "uninterrupted_s": round(whole_s, 1), "uninterrupted_rc": whole.returncode}


# -- hostile calculator input ------------------------------------------------------
HOSTILE = ["round(1, -10**9)", "round(1, -3*10**7)", "10**10**8", "9**9**9", "exp(1000)", "factorial(100000)",
           "1+" * 20000 + "1", "(" * 500 + "1" + ")" * 500, "x" * 100_000]


def calculator(limit_s: float) -> list[dict]:
    out = []
    for expression in HOSTILE:
        start = time.perf_counter()
        try:
            result = subprocess.run([*CLI, "tools", "call", "calculator", json.dumps({"expression": expression})], cwd=REPO,
                                    capture_output=True, text=True, timeout=limit_s)
            ending = f"rc {result.returncode}"
            text = (result.stdout + result.stderr).strip()
            shown = "traceback" if "Traceback" in text else text.splitlines()[-1][:120] if text else ""
        except subprocess.TimeoutExpired:
            ending, text, shown = f"killed at {limit_s:.0f} s", "", ""
        out.append({"expression": expression if len(expression) <= 40 else expression[:20] + f"... ({len(expression):,} chars)",
                    "seconds": round(time.perf_counter() - start, 2), "ending": ending, "output": shown, "output_chars": len(text)})
    return out


def probe(result: dict, name: str, function, *args) -> None:
    """Run one probe; a probe that fails is reported as such and the suite goes on."""
    try:
        result[name] = function(*args)
    except Exception as exc:
        result[name] = {"failed": f"{type(exc).__name__}: {exc}"[:300]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model to serve (registry name or folder)")
    parser.add_argument("--quick", action="store_true", help="a tiny random model, fewer and smaller probes")
    parser.add_argument("--kills", type=int, default=4, help="SIGKILLs during TinyGPT training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calculator-limit", type=float, default=30.0, help="seconds before a tool call is killed")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if args.quick:
            from llm_deeper.models.tiny import save_tiny_model

            model = str(save_tiny_model(Path(tmp) / "tiny", context=8192))
        result: dict = {"model": Path(model).name if args.quick else model}
        server = Server(model, "--max-concurrency", "2", "--max-queue", "4", "--shutdown-timeout", "2")
        try:
            probe(result, "body_sizes", body_sizes, server, [0.1, 1.0, 5.0, 20.0])
            probe(result, "ref_cycles", ref_cycles, server)
            probe(result, "disconnects", disconnects, server, 5 if args.quick else 20)
            probe(result, "plain_disconnects", plain_disconnects, server, 2 if args.quick else 4)
            probe(result, "stop_strings", stop_strings, server)
            probe(result, "exposure", exposure, server)
            probe(result, "queue_overflow", queue_overflow, server, 64)
            probe(result, "sigterm", sigterm, server, 4)
        finally:
            server.stop()
    probe(result, "training_kills", training_kills, 2 if args.quick else args.kills, args.seed)
    probe(result, "calculator", calculator, args.calculator_limit)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    report("faults", result, indent=1)


if __name__ == "__main__":
    main()
