"""How a long CPU run's process allocates: one setting, applied by the CLI and the benchmark's workers.

Training, ranking and the path scores allocate many short-lived tensors of a few to
tens of MiB (``[N, d]`` layer outputs, ``[B, M]`` score matrices). glibc's malloc serves
such blocks by ``mmap`` and returns them to the system when freed, so every new one
page-faults its memory again; that costs as much as the arithmetic on them. Keeping freed
blocks in the heap for reuse measured 2x faster on the choice of the path blend weight and a
few per cent per training epoch (cloth -> sport, one thread), at the price of the process
keeping its peak heap.

Raising the ``mmap`` threshold alone stops at 32 MiB (glibc's ceiling for it), and at catalogue
scale the ``[N, d]`` tables are larger than that: on a generated 3M-edge graph (``[N, 64]`` =
84 MB) one training epoch page-faulted 14.6 M times and spent 22 of its 63 CPU seconds in the
kernel. So ``mmap`` is also turned off for ordinary blocks (``M_MMAP_MAX = 0``): every block
comes from the heap and is reused when freed. The same epoch: 0.43 M faults, 2.7 s in the
kernel, 45 CPU s, 8 % more peak RSS (``benchmarks/scale.py`` measures it per size).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # glibc's mallopt parameters
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_")


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to serve every block from the heap and keep freed ones for reuse
    instead of returning them to the system (``mmap`` off for ordinary blocks, no trimming
    below 2 GiB of free heap). Leaves the allocator as it is where the user set any of the
    ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_MAX_`` variables, or
    off glibc. Returns whether the setting was applied."""
    if any(v in os.environ for v in _ENV):
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return (bool(mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
            and bool(mallopt(_M_MMAP_MAX, 0)))
