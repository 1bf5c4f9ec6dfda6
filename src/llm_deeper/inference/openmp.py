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
