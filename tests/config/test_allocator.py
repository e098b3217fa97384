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


def mallinfo() -> _MallInfo2:
    """Return glibc's heap figures: free bytes in the heap (fordblks), bytes in separately
    mapped blocks (hblkhd), releasable top of the heap (keepcost)."""
    libc = allocator._glibc()
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2()


def on_glibc() -> None:
    require(sys.platform == "linux" and allocator._glibc() is not None, "glibc's malloc on Linux")


def test_a_big_array_freed_in_the_block_stays_in_the_heap_until_the_block_ends():
    on_glibc()
    with allocator.heap_kept():
        with allocator.heap_kept():  # reentrant: an inner block neither restores nor trims
            array = np.ones(BIG // 8)
            held = mallinfo()
            del array
            freed = mallinfo()
        inner_done = mallinfo()
    after = mallinfo()

    assert held.hblkhd < BIG  # served from the heap, not mapped on its own
    assert freed.fordblks - held.fordblks >= BIG  # kept for the next big array
    assert inner_done.fordblks - held.fordblks >= BIG  # the inner block did not trim
    assert after.keepcost < BIG  # trimmed once the outermost block ended


def test_a_big_array_outside_the_block_is_mapped_on_its_own_and_given_straight_back():
    on_glibc()
    before = mallinfo()
    array = np.ones(BIG // 8)
    held = mallinfo()
    del array
    freed = mallinfo()

    assert held.hblkhd - before.hblkhd >= BIG
    assert freed.fordblks - held.fordblks < BIG


@pytest.mark.parametrize("existing", [None, "dirty_decay_ms:0"])
def test_polars_allocator_setting_keeps_what_the_environment_says(monkeypatch, existing):
    if existing is None:
        monkeypatch.delenv("_RJEM_MALLOC_CONF", raising=False)
    else:
        monkeypatch.setenv("_RJEM_MALLOC_CONF", existing)

    allocator.polars_allocator_configure()

    assert os.environ["_RJEM_MALLOC_CONF"] == (existing or allocator.JEMALLOC_CONF)
