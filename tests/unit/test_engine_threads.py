"""The engine's thread count follows the idle cores: all of them on a quiet machine, fewer while others hold them."""

from __future__ import annotations

import subprocess
import sys
import time

import torch

from llm_deeper.inference import openmp
from llm_deeper.inference.openmp import ThreadBudget, cpu_times, others_cores, threads_for


def test_threads_are_the_idle_cores_within_bounds():
    assert threads_for(cores=2, others=0, most=2) == 2
    assert threads_for(cores=2, others=0.2, most=2) == 2  # a streaming client's CPU time keeps both cores
    assert threads_for(cores=2, others=2 / 3, most=2) == 1  # one busy process beside our 2 threads takes a core
    assert threads_for(cores=2, others=1, most=2) == 1
    assert threads_for(cores=2, others=14, most=2) == 1  # never zero
    assert threads_for(cores=16, others=3, most=8) == 8  # never more than asked for
    assert threads_for(cores=16, others=10.4, most=8) == 6


def test_others_are_the_machines_busy_time_less_this_process():
    # (seconds, machine busy CPU-seconds, this process's CPU-seconds): 2 s in which the machine was busy
    # for 3 CPU-seconds, 2 of them ours, so others used half a core
    assert others_cores((10.0, 100.0, 5.0), (12.0, 103.0, 7.0)) == 0.5
    assert others_cores((10.0, 100.0, 5.0), (11.0, 101.9, 7.0)) == 0.0  # clock-tick rounding never goes negative
    assert others_cores((10.0, 100.0, 5.0), (10.0, 100.0, 5.0)) is None  # no time passed


def test_a_busy_process_beside_us_shows_in_the_reading():
    before = cpu_times()
    if before is None:  # no /proc here
        return
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 1.0\nwhile time.time() < end: pass"])
    spinner.wait()
    reading = others_cores(before, cpu_times())
    # the spinner had a core to itself on a quiet machine, and more than its share of one on a busy one
    assert reading is not None and reading >= 0.4


def test_our_own_busy_time_is_not_others(monkeypatch):
    # the machine's busy time grows exactly by ours: nobody else is there
    clock = iter([(0.0, 50.0, 1.0), (1.0, 51.75, 2.75), (2.0, 53.5, 4.5)])
    monkeypatch.setattr(openmp, "cpu_times", lambda: next(clock))
    budget = ThreadBudget(most=2, every_s=0.0)
    budget.cores = 2
    assert [budget.update(), budget.update()] == [2, 2]
    assert budget.others == 0.0 and budget.lowered == 0


def test_budget_drops_while_the_machine_is_busy_and_comes_back(monkeypatch):
    # others use 1.8 cores for 3 readings, then none
    busy = [1.8, 1.8, 1.8, 0, 0, 0, 0, 0]
    times = [(0.0, 0.0, 0.0)]
    for index, others in enumerate(busy, start=1):
        times.append((float(index), times[-1][1] + others, 0.0))
    clock = iter(times)
    monkeypatch.setattr(openmp, "cpu_times", lambda: next(clock))
    before = torch.get_num_threads()
    budget = ThreadBudget(most=2, every_s=0.0)
    budget.cores = 2
    try:
        # averaged: 0.9, 1.35, 1.58, then 0.79, 0.39 (one quiet reading is not enough) ...
        assert [budget.update() for _ in range(8)] == [1, 1, 1, 1, 2, 2, 2, 2]
        assert budget.lowered == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_gap_in_which_we_did_not_run_is_not_read_as_load(monkeypatch):
    # 10 s stopped while others used both cores, then others busy as we run again; last, a long step of ours under load
    clock = iter([(0.0, 0.0, 0.0), (10.0, 20.0, 0.0), (10.5, 21.0, 0.0), (20.5, 41.0, 5.0)])
    monkeypatch.setattr(openmp, "cpu_times", lambda: next(clock))
    before = torch.get_num_threads()
    budget = ThreadBudget(most=2, every_s=0.5)
    budget.cores, budget.checked = 2, -1.0
    try:
        assert budget.update() == 2 and budget.others == 0.0  # the stopped gap says nothing about now
        budget.checked = -1.0
        assert budget.update() == 1 and budget.others == 1.0  # a fresh reading of both cores taken counts
        budget.checked = -1.0
        budget.update()
        assert budget.others == 1.25  # a long interval in which we ran (a slow step) counts too: (1 + 1.5) / 2
    finally:
        torch.set_num_threads(before)


def test_the_reading_waits_its_interval(monkeypatch):
    calls = []
    monkeypatch.setattr(openmp, "cpu_times", lambda: calls.append(1) or (time.monotonic(), 0.0, 0.0))
    budget = ThreadBudget(most=2, every_s=3600)
    assert budget.update() == 2 and budget.update() == 2
    assert len(calls) == 1  # only the reading at construction


def test_the_thread_that_builds_an_engine_frees_its_idle_openmp_helpers(tiny_llama_dir, monkeypatch):
    # A server builds the engine on its main thread and submits from worker threads: the main thread's
    # helpers, left from loading the weights, would keep the engine's team sleeping at every barrier.
    import threading

    from llm_deeper.inference import engine as engine_module

    callers = []
    monkeypatch.setattr(engine_module, "release_idle_threads", lambda: callers.append(threading.current_thread()) or True)
    engine = engine_module.Engine.load(str(tiny_llama_dir), max_batch=2)
    engine.close()
    assert threading.current_thread() in callers
