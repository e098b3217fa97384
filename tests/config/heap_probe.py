"""Run one allocator scenario in a process of its own and print glibc's heap figures as JSON.

glibc's heap and its mallopt settings belong to the whole process. In the test process, other
threads (live servers, earlier tests' leftovers) allocate beside a scenario, and a big chunk a
scenario freed can stay in the heap and serve the next one, so each scenario runs here, alone:

    python -m tests.config.heap_probe kept|default
"""

import ctypes
import json
import sys

import numpy as np

from config import allocator

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


def mallinfo() -> dict[str, int]:
    """Return free bytes in the heap (fordblks), bytes in separately mapped blocks (hblkhd) and
    the releasable top of the heap (keepcost)."""
    libc = allocator._glibc()
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {name: getattr(info, name) for name in ("hblkhd", "fordblks", "keepcost")}


def kept() -> dict[str, dict[str, int]]:
    """A big array allocated and freed inside nested blocks, then the blocks ended."""
    with allocator.heap_kept():
        with allocator.heap_kept():  # reentrant: an inner block neither restores nor trims
            array = np.ones(BIG // 8)
            held = mallinfo()
            del array
            freed = mallinfo()
        inner_done = mallinfo()
    return {"held": held, "freed": freed, "inner_done": inner_done, "after": mallinfo()}


def default() -> dict[str, dict[str, int]]:
    """A big array allocated and freed with glibc's own settings."""
    before = mallinfo()
    array = np.ones(BIG // 8)
    held = mallinfo()
    del array
    return {"before": before, "held": held, "freed": mallinfo()}


SCENARIOS = {"kept": kept, "default": default}

if __name__ == "__main__":
    print(json.dumps(SCENARIOS[sys.argv[1]]()))
