"""The allocator setting the CLI and the benchmark's workers apply."""
from __future__ import annotations

import ctypes.util
import platform

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
