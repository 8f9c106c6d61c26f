"""How a long CPU run's process allocates: one setting, applied by the CLI and the benchmark's workers.

Training, ranking and the path scores allocate many short-lived tensors of a few to
tens of MiB (``[N, d]`` layer outputs, ``[B, M]`` score matrices). glibc's malloc serves
such blocks by ``mmap`` and returns them to the system when freed, so every new one
page-faults its memory again; that costs as much as the arithmetic on them. Keeping freed
blocks in the heap for reuse measured 2x faster on the choice of the path blend weight and a
few per cent per training epoch (cloth -> sport, one thread), at the price of the process
keeping its peak heap.

Raising the ``mmap`` threshold alone stops at 32 MiB (glibc's ceiling for it), and at catalogue
scale the ``[N, d]`` tables are larger than that: they are page-faulted in afresh every step
(a generated 3M-edge graph, ``[N, 64]`` = 84 MB: 14.6 M faults and 22 of 63 CPU seconds in the
kernel per epoch). ``KGREC_MALLOC_REUSE=1`` also turns ``mmap`` off for ordinary blocks
(``M_MMAP_MAX = 0``), so that every block comes from the heap and is reused when freed: 0.43 M
faults and 45 CPU s on that epoch, 1,176 -> 677 CPU s at 30M edges, but the heap keeps what it
grew to and fragments, so the peak RSS rose by 16-50 % (14.9 -> 22.5 GiB at 30M edges, near the
24 GiB of the machine measured). Because that memory is what decides whether a large run fits at
all, it is an opt-in; ``docs/benchmarks.md`` ("Scale") has the table of both.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # glibc's mallopt parameters
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_")
REUSE_ENV = "KGREC_MALLOC_REUSE"  #: "1": serve blocks above 32 MiB from the heap too (faster, more peak memory)
_ON = {"1", "true", "yes", "on"}  # the spellings kgrec.progress reads as a switch, here the ones that turn it on


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks (up to 32 MiB each, its largest ``mmap``
    threshold; every block with ``KGREC_MALLOC_REUSE=1``, or ``true``, ``yes``, ``on``) for reuse instead of returning them to
    the system, with no trimming below 2 GiB of free heap. Leaves the allocator as it is where the
    user set any of the ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_MAX_``
    variables, or off glibc. Returns whether the setting was applied."""
    if any(v in os.environ for v in _ENV):
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    applied = bool(mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    if os.environ.get(REUSE_ENV, "").strip().lower() in _ON:
        applied = applied and bool(mallopt(_M_MMAP_MAX, 0))
    return applied
