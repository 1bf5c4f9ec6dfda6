"""Keep freed tensor memory in the process, so a long prompt's prefill does not page-fault.

glibc's malloc hands a block larger than its mmap threshold straight to the kernel
(mmap) and gives it back on free (munmap), and returns the free top of its heaps
once more than the trim threshold is free. Both thresholds adapt upwards as blocks
are freed, but not to a prefill's pattern: every layer allocates and frees tens of
MB ([1036, 3072] fp32 for gate|up alone is 12.7 MB), so each layer wrote to fresh
pages the kernel first had to fault in and zero. A 1,036-token prefill of the default
model took 218,550 minor page faults (~900 MB of zeroed pages) and ~13% more CPU
time than with the thresholds fixed high, which leaves 0 faults (bench/RESULTS.md).
vLLM gets the same from tcmalloc, which it preloads on CPU.

The cost: the heap keeps what a prefill freed (up to its peak working set) for the
next one, instead of returning it between prompts.
"""

from __future__ import annotations

import functools
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
# glibc's largest mmap threshold on 64-bit (half its 64 MB heap size): blocks up to this come from a heap.
MMAP_THRESHOLD = 32 << 20
# Free memory a heap may keep at its top: above a prefill's working set (~100 MB for 1,000 tokens; a longer
# prompt's biggest blocks pass the mmap threshold), so a prefill's is kept, while more freed at once (a one-off
# such as tokenizing a 1 MB request, +264 MB in bench_faults.py) can still go back to the system.
TRIM_THRESHOLD = 256 << 20
ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")  # a user's own settings win


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds high (once per process); True if they were set.

    Nothing happens outside glibc (macOS, musl) or when the user set glibc's variables.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or any(name in os.environ for name in ENVIRONMENT):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
