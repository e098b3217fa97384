"""The allocator settings a recompute runs under: freed memory kept for reuse, trimmed after."""

import ctypes
import os
import sys

import numpy as np
import pytest

from config import allocator
from tests.conftest import require

BIG = 48 * 1024 * 1024  # above glibc's largest automatic mmap threshold (32 MB)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def heap_free_bytes() -> int:
    """Return the free bytes glibc's heap holds (mallinfo2().fordblks)."""
    libc = allocator._glibc()
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2().fordblks


def test_a_big_array_freed_in_the_block_stays_in_the_heap_until_the_block_ends():
    require(sys.platform == "linux" and allocator._glibc() is not None, "glibc's malloc on Linux")
    before = heap_free_bytes()
    with allocator.heap_kept():
        with allocator.heap_kept():  # reentrant: an inner block neither restores nor trims
            array = np.ones(BIG // 8)
            del array
        kept = heap_free_bytes()
    after = heap_free_bytes()

    assert kept - before >= BIG  # reused by the next big array instead of mapped again
    assert after - before < BIG  # given back once the run is over


def test_a_big_array_freed_outside_the_block_goes_straight_back():
    require(sys.platform == "linux" and allocator._glibc() is not None, "glibc's malloc on Linux")
    before = heap_free_bytes()
    array = np.ones(BIG // 8)
    del array
    assert heap_free_bytes() - before < BIG


@pytest.mark.parametrize("existing", [None, "dirty_decay_ms:0"])
def test_polars_allocator_setting_keeps_what_the_environment_says(monkeypatch, existing):
    if existing is None:
        monkeypatch.delenv("_RJEM_MALLOC_CONF", raising=False)
    else:
        monkeypatch.setenv("_RJEM_MALLOC_CONF", existing)

    allocator.polars_allocator_configure()

    assert os.environ["_RJEM_MALLOC_CONF"] == (existing or allocator.JEMALLOC_CONF)
