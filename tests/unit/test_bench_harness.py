"""bench/harness.py: alternating order, warm-up, and the one JSON object every benchmark prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import harness  # noqa: E402


def test_alternate_warms_up_then_flips_the_order_each_round():
    calls: list[str] = []
    sides = {name: (lambda name=name: calls.append(name) or len(calls)) for name in ("a", "b")}
    results = harness.alternate(sides, rounds=3, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert results == {"a": [3, 6, 7], "b": [4, 5, 8]}  # warm-up results are not kept


def test_before_runs_ahead_of_every_call():
    seen: list[tuple[str, str]] = []
    last = {"called": ""}
    sides = {name: (lambda name=name: last.update(called=name)) for name in ("a", "b")}
    harness.alternate(sides, rounds=1, warmup=0, before=lambda name: seen.append((name, last["called"])))
    assert seen == [("a", ""), ("b", "a")]


def test_before_runs_ahead_of_warm_up_calls_too():
    # bench_vllm_vs_ours warms each server up with a whole round: the other server must be paused then too
    seen: list[str] = []
    sides = {name: (lambda: None) for name in ("a", "b")}
    harness.alternate(sides, rounds=1, warmup=1, before=seen.append)
    assert seen == ["a", "b", "a", "b"]


def test_report_prints_one_object_named_bench_with_the_machine(capsys):
    harness.report("demo", {"tokens_per_s": 1.5})
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "demo" and out["tokens_per_s"] == 1.5
    machine = out["machine"]
    assert machine["cores"] >= 1 and isinstance(machine["avx512"], bool)
    assert set(machine["at_start"]) == {"load_average", "runnable_tasks"} and len(machine["at_end"]["load_average"]) == 3
    assert machine["versions"]["python"].count(".") == 2
