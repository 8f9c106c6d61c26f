"""The allocator setting the CLI and the benchmark's workers apply."""
from __future__ import annotations

import ctypes.util
import os
import platform
import subprocess
import sys

import pytest

from kgrec import memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_keeps_freed_memory_for_reuse(monkeypatch):
    for var in memory._ENV:
        monkeypatch.delenv(var, raising=False)
    assert memory.keep_freed_memory()


@pytest.mark.parametrize("var", memory._ENV)
def test_a_users_own_malloc_setting_is_left_alone(monkeypatch, var):
    monkeypatch.setenv(var, "1048576")
    assert not memory.keep_freed_memory()


def test_without_a_c_library_nothing_is_changed(monkeypatch):
    for var in memory._ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert not memory.keep_freed_memory()


_FAULTS = """
import resource, sys, torch
from kgrec import memory
if sys.argv[1] == "keep":
    assert memory.keep_freed_memory()
for _ in range(8):  # until the heap has grown to hold them
    torch.empty(16 * 2**20).fill_(1.0)  # 64 MiB, above glibc's largest mmap threshold
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(16):
    torch.empty(16 * 2**20).fill_(1.0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_blocks_above_32_mib_are_reused_only_with_kgrec_malloc_reuse(monkeypatch):
    for var in (*memory._ENV, memory.REUSE_ENV):
        monkeypatch.delenv(var, raising=False)

    def faults(how: str, reuse: str) -> int:
        env = {**os.environ, memory.REUSE_ENV: reuse}
        return int(subprocess.run([sys.executable, "-c", _FAULTS, how], capture_output=True, text=True, check=True,
                                  env=env).stdout)

    pages = 16 * 64 * 2**20 // 4096  # sixteen fresh 64 MiB blocks, in 4 KiB pages
    assert faults("plain", "1") >= pages // 2  # glibc maps each one afresh (fewer faults only with huge pages)
    assert faults("keep", "0") >= pages // 2  # the default keeps them mapped afresh: the peak stays the live peak
    assert faults("keep", "false") >= pages // 2  # a switch said off, as KGREC_PROGRESS reads it
    assert faults("keep", "1") <= pages // 8  # reused (the heap may still grow once or twice)
