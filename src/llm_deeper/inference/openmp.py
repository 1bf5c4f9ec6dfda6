"""Keep one busy OpenMP thread team per process, so decode steps stay fast.

PyTorch's CPU kernels run on OpenMP. Every Python thread that ever ran a
multi-threaded op keeps its own team of helper threads, and once a process
holds more such threads than it has cores, libgomp stops spinning between
parallel regions and sleeps instead: each of the hundreds of small kernels in
a decode step then pays a futex wake-up. On 2 cores that made the engine's
thread 1.5x slower than the same loop on the main thread (bench/RESULTS.md).

The cure is OpenMP 5's `omp_pause_resource_all`: a thread that hands work to
the engine releases its idle helpers, and the engine releases its own when it
goes idle. A released team is rebuilt by the next parallel op (microseconds).
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

OMP_PAUSE_SOFT = 1  # free the threads, keep nothing else to reinitialise


@functools.lru_cache(maxsize=1)
def _pause_function():
    """`omp_pause_resource_all` of the OpenMP runtime torch uses, or None if there is none."""
    import torch

    candidates = sorted(Path(torch.__file__).parent.joinpath("lib").glob("lib*omp*"))
    try:  # on Linux, the runtime torch actually loaded (it may live outside torch/lib)
        with open("/proc/self/maps") as maps:
            candidates += [Path(line.split()[-1]) for line in maps if "omp" in line.rsplit("/", 1)[-1]]
    except OSError:
        pass
    for path in candidates:
        try:
            library = ctypes.CDLL(str(path))  # already loaded: this returns the same handle
            function = library.omp_pause_resource_all
        except (OSError, AttributeError):
            continue
        function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
        return function
    return None


def release_idle_threads() -> bool:
    """Free the calling thread's idle OpenMP helpers; True if the runtime did so.

    Safe anywhere outside a parallel region (inside one the runtime refuses).
    """
    function = _pause_function()
    return function is not None and function(OMP_PAUSE_SOFT) == 0


# -- how many threads a busy machine can give -------------------------------------------
def threads_for(cores: int, others: float, most: int) -> int:
    """Threads for a parallel op when other processes use `others` cores' worth of CPU: the idle cores, 1 to `most`.

    A parallel op ends at a barrier that waits for its slowest thread; when the cores are
    all taken, a thread of ours is descheduled for a whole time slice and every one of
    the ~1,000 small ops of a decode step waits for it. Measured on 2 shared cores at load
    ~15 (bench/bench_decode_profile.py, default model, fp32): 4,898 ms per step with 2
    threads, 648 ms with 1.
    """
    # A core counts as taken once others used more than half of it: one busy process beside our
    # two threads gets 2/3 of a core (the scheduler shares 2 cores among 3 threads), and must cost us one.
    return max(1, min(most, int(cores - others + 0.5)))


def cpu_times() -> tuple[float, float, float] | None:
    """(monotonic seconds, CPU seconds the whole machine has been busy, CPU seconds this process used); None without /proc."""
    import os
    import time

    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()
        user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[1:8])
    except (OSError, ValueError):
        return None
    busy = (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    own = os.times()
    return time.monotonic(), busy, own.user + own.system


def others_cores(before: tuple[float, float, float], after: tuple[float, float, float]) -> float | None:
    """Cores' worth of CPU that other processes used between two `cpu_times()` readings.

    CPU time over an interval, not a count of runnable tasks at one instant: a snapshot
    taken just after a decode step delivers its tokens finds the streaming clients awake
    (they wake for each token) and our own threads between states, and on a quiet machine
    such readings took the engine down to one thread. Nice'd work counts for what the
    scheduler gives it, which is what our threads lose to it.
    """
    seconds = after[0] - before[0]
    if seconds <= 0:
        return None
    return max(0.0, (after[1] - before[1]) - (after[2] - before[2])) / seconds


def stale(before: tuple[float, float, float], after: tuple[float, float, float], every_s: float) -> bool:
    """Whether a reading spans a long gap in which this process did not run (it was stopped, e.g. SIGSTOP).

    What others did then says nothing about now: a server paused while another engine
    ran (bench/bench_vllm_vs_ours.py) read 2 cores taken when resumed and decoded its next
    second on 1 thread (one stream 22.0 tok/s against 24.6 unpaused).
    """
    seconds = after[0] - before[0]
    return seconds > max(3 * every_s, 2.0) and (after[2] - before[2]) < 0.05 * seconds


class ThreadBudget:
    """The engine thread's torch thread count, following what the machine has idle (checked every `every_s`).

    On a quiet machine it stays at `most` (every core); when other processes take the
    cores it drops to what is left, and comes back when they finish. Readings are
    averaged (half the old value, half the new) so one busy moment does not flip it.
    """

    def __init__(self, most: int, every_s: float = 0.5):
        import os
        import time

        self.most, self.every_s = most, every_s
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.current = most
        self.lowered = 0  # times it gave up cores (in /health: on a quiet machine it should stay 0)
        self.others = 0.0
        self.checked = time.monotonic()
        self.last = cpu_times()

    def update(self) -> int:
        """Re-read the machine if it is time; set and return the thread count to use now."""
        import time

        import torch

        if time.monotonic() - self.checked < self.every_s:
            return self.current
        now = cpu_times()
        reading = others_cores(self.last, now) if self.last is not None and now is not None else None
        if reading is not None and stale(self.last, now, self.every_s):
            reading = None
        self.last, self.checked = now, time.monotonic()
        if reading is None:
            return self.current
        self.others = (self.others + reading) / 2
        wanted = threads_for(self.cores, self.others, self.most)
        if wanted != self.current:
            self.lowered += wanted < self.current
            torch.set_num_threads(wanted)
            self.current = wanted
        return self.current
