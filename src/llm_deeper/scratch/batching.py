"""Static vs continuous batching, counted in decode steps (a scheduler from scratch).

A decode step advances every running request by one token and costs about the same for 1
row as for a few (it is bound by reading the weights). Static batching takes B requests,
runs until the longest finishes, then takes the next B: finished rows idle as padding.
Continuous batching (Orca, Yu et al. 2022) refills a row the step after its request ends.
Both produce the same tokens per request; continuous batching needs fewer steps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Schedule:
    """How a batching policy ran a list of requests."""

    steps: int  # decode steps taken
    busy_rows: int  # row-steps that produced a token
    idle_rows: int  # row-steps wasted (a finished request's row waiting for the batch)
    finished_at: list[int]  # the step at which each request produced its last token

    @property
    def utilization(self) -> float:
        return self.busy_rows / (self.busy_rows + self.idle_rows)


def static_batching(lengths: list[int], rows: int) -> Schedule:
    """Requests in arrival order, `rows` at a time; a batch runs until its longest request ends."""
    steps, idle, finished = 0, 0, [0] * len(lengths)
    for start in range(0, len(lengths), rows):
        batch = lengths[start:start + rows]
        for i, n in enumerate(batch):
            finished[start + i] = steps + n
        idle += sum(max(batch) - n for n in batch) + (rows - len(batch)) * max(batch)
        steps += max(batch)
    return Schedule(steps, sum(lengths), idle, finished)


def continuous_batching(lengths: list[int], rows: int) -> Schedule:
    """Requests in arrival order; a row whose request ended takes the next waiting one at the next step."""
    waiting = list(range(len(lengths)))
    running: dict[int, int] = {}  # request → tokens still to produce
    steps, busy, idle, finished = 0, 0, 0, [0] * len(lengths)
    while waiting or running:
        while waiting and len(running) < rows:  # admit between two steps
            request = waiting.pop(0)
            running[request] = lengths[request]
        steps += 1
        busy += len(running)
        idle += rows - len(running)
        for request in list(running):
            running[request] -= 1
            if running[request] == 0:
                finished[request] = steps
                del running[request]
    return Schedule(steps, busy, idle, finished)
