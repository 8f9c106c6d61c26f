"""How a long CPU run's process allocates: one setting, applied by the CLI and the benchmark's workers.

Training, ranking and the path scores allocate many short-lived tensors of a few to
tens of MiB (``[N, d]`` layer outputs, ``[B, M]`` score matrices). glibc's malloc serves
such blocks by ``mmap`` and returns them to the system when freed, so every new one
page-faults its memory again; that costs as much as the arithmetic on them. Keeping freed
blocks of up to 32 MiB in the heap for reuse measured 2x faster on the choice of the path
blend weight and a few per cent per training epoch (cloth -> sport, one thread), at the price
of the process keeping its peak heap.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks (up to 32 MiB each, its largest ``mmap``
    threshold) for reuse instead of returning them to the system. Leaves the allocator as
    it is where the user set either ``MALLOC_*_THRESHOLD_`` variable, or off glibc.
    Returns whether the setting was applied."""
    if any(v in os.environ for v in _ENV):
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
