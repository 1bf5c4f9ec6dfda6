"""Prometheus text metrics: requests, tokens, latency, batch size, queue depth.

A few counters and histograms in plain Python, rendered in the Prometheus
text exposition format (version 0.0.4) at GET /metrics.
"""

from __future__ import annotations

import bisect
import threading
import time

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
PREFIX = "llm_deeper_"


class Histogram:
    """Cumulative buckets, a sum and a count."""

    def __init__(self, buckets=LATENCY_BUCKETS):
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip(self.buckets, self.counts):
            running += count
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{le="+Inf"}} {self.n}')
        out += [f"{name}_sum {self.total:.6f}", f"{name}_count {self.n}"]
        return out


class Metrics:
    """Everything /metrics reports; thread-safe (the engine thread records too)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = {}  # (route, status) -> count
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.latency = Histogram()
        self.first_token = Histogram()

    def count_request(self, route: str, status: int) -> None:
        with self._lock:
            self.requests[(route, status)] = self.requests.get((route, status), 0) + 1

    def observe(self, request, event) -> None:
        """An engine observer: called with each request's last event."""
        seconds = time.perf_counter() - request.submitted
        first = request.first_token_at - request.submitted if request.first_token_at else None
        self.record_generation(len(request.prompt_ids), len(request.output), seconds, first)

    def record_generation(self, prompt_tokens: int, completion_tokens: int, seconds: float, first_token_seconds: float | None) -> None:
        with self._lock:
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.latency.observe(seconds)
            if first_token_seconds is not None:
                self.first_token.observe(first_token_seconds)

    def render(self, engine_stats: dict) -> str:
        p = PREFIX
        with self._lock:
            lines = [f"# HELP {p}requests_total HTTP requests by route and status.", f"# TYPE {p}requests_total counter"]
            for (route, status), count in sorted(self.requests.items()):
                lines.append(f'{p}requests_total{{route="{route}",status="{status}"}} {count}')
            lines += [
                f"# HELP {p}prompt_tokens_total Prompt tokens processed.", f"# TYPE {p}prompt_tokens_total counter",
                f"{p}prompt_tokens_total {self.prompt_tokens}",
                f"# HELP {p}completion_tokens_total Tokens generated.", f"# TYPE {p}completion_tokens_total counter",
                f"{p}completion_tokens_total {self.completion_tokens}",
                f"# HELP {p}request_latency_seconds Time from submission to the last token of each generation.",
                f"# TYPE {p}request_latency_seconds histogram",
                *self.latency.lines(f"{p}request_latency_seconds"),
                f"# HELP {p}time_to_first_token_seconds Time from submission to the first token.",
                f"# TYPE {p}time_to_first_token_seconds histogram",
                *self.first_token.lines(f"{p}time_to_first_token_seconds"),
            ]
        lines += [
            f"# HELP {p}batch_size Requests in the last decode step.", f"# TYPE {p}batch_size gauge",
            f"{p}batch_size {engine_stats['batch_size']}",
            f"# HELP {p}running_requests Requests holding a batch slot.", f"# TYPE {p}running_requests gauge",
            f"{p}running_requests {engine_stats['running']}",
            f"# HELP {p}queue_depth Requests waiting for a slot.", f"# TYPE {p}queue_depth gauge",
            f"{p}queue_depth {engine_stats['waiting']}",
            f"# HELP {p}decode_steps_total Batched decode steps run.", f"# TYPE {p}decode_steps_total counter",
            f"{p}decode_steps_total {engine_stats['steps']}",
        ]
        prefix = engine_stats.get("prefix_cache") or {}
        if prefix.get("enabled"):
            lines += [
                f"# HELP {p}prefix_cache_budget_bytes Memory the prefix cache may hold.", f"# TYPE {p}prefix_cache_budget_bytes gauge",
                f"{p}prefix_cache_budget_bytes {prefix['budget_bytes']}",
                f"# HELP {p}prefix_cache_tokens Prompt tokens whose KV the prefix cache holds now.", f"# TYPE {p}prefix_cache_tokens gauge",
                f"{p}prefix_cache_tokens {prefix['cached_tokens']}",
                f"# HELP {p}prefix_cache_queried_tokens_total Prompt tokens looked up in the prefix cache.",
                f"# TYPE {p}prefix_cache_queried_tokens_total counter",
                f"{p}prefix_cache_queried_tokens_total {prefix['lookup_tokens']}",
                f"# HELP {p}prefix_cache_hit_tokens_total Prompt tokens served from the prefix cache (not computed).",
                f"# TYPE {p}prefix_cache_hit_tokens_total counter",
                f"{p}prefix_cache_hit_tokens_total {prefix['hit_tokens']}",
                f"# HELP {p}prefix_cache_hit_rate Share of looked-up prompt tokens served from the cache.",
                f"# TYPE {p}prefix_cache_hit_rate gauge",
                f"{p}prefix_cache_hit_rate {prefix['hit_rate']:.6f}",
                f"# HELP {p}prefix_cache_evictions_total Blocks dropped to stay in the budget.", f"# TYPE {p}prefix_cache_evictions_total counter",
                f"{p}prefix_cache_evictions_total {prefix['evictions']}",
            ]
        return "\n".join(lines) + "\n"
