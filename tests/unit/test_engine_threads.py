"""The engine's thread count follows the idle cores: all of them on a quiet machine, fewer while others hold them."""

from __future__ import annotations

import torch

from llm_deeper.inference import openmp
from llm_deeper.inference.openmp import ThreadBudget, others_running, threads_for


def test_threads_are_the_idle_cores_within_bounds():
    assert threads_for(cores=2, others_running=0, most=2) == 2
    assert threads_for(cores=2, others_running=1, most=2) == 1
    assert threads_for(cores=2, others_running=0.5, most=2) == 2  # a brief wake-up elsewhere keeps both cores
    assert threads_for(cores=2, others_running=14, most=2) == 1  # never zero
    assert threads_for(cores=16, others_running=3, most=8) == 8  # never more than asked for
    assert threads_for(cores=16, others_running=10.4, most=8) == 6


def test_others_running_leaves_out_this_process():
    reading = others_running()
    assert reading is None or reading >= 0


def test_budget_drops_while_the_machine_is_busy_and_comes_back(monkeypatch):
    readings = iter([14, 14, 14, 0, 0, 0, 0, 0])
    monkeypatch.setattr(openmp, "others_running", lambda: next(readings))
    before = torch.get_num_threads()
    budget = ThreadBudget(most=2, every_s=0.0)
    budget.cores = 2
    try:
        assert [budget.update() for _ in range(8)] == [1, 1, 1, 1, 1, 1, 1, 2]  # averaged: one quiet moment is not enough
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
