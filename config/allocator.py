"""Memory allocator settings: a recompute reuses its freed pages instead of faulting in new ones.

Why and what it saved: docs/decisions/0003-allocator-keeps-freed-pages.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

# jemalloc keeps freed pages this long before returning them (its defaults: 10 s dirty, then
# muzzy pages returned at once).
JEMALLOC_CONF = "dirty_decay_ms:30000,muzzy_decay_ms:30000"

# mallopt(3) parameters, and the values glibc starts with. Once set, the mmap threshold no
# longer adapts to the program (glibc's dynamic threshold): after a run it stays at 128 KB.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_THRESHOLD = 128 * 1024
# While a run lasts: arrays up to 1 GB come from the heap, and the heap is not trimmed.
_KEPT_MMAP_THRESHOLD = 1 << 30
_KEPT_TRIM_THRESHOLD = (1 << 31) - 1

_lock = threading.Lock()
_depth = 0


def polars_allocator_configure() -> None:
    """Set polars' jemalloc decay (unless the environment already says) before polars loads."""
    os.environ.setdefault("_RJEM_MALLOC_CONF", JEMALLOC_CONF)


@cache
def _glibc() -> ctypes.CDLL | None:
    """Return glibc when this process runs on it (not on macOS, musl, ...)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    return libc


def _mallopt(libc: ctypes.CDLL, trim: int, mmap: int) -> None:
    libc.mallopt(_M_TRIM_THRESHOLD, trim)
    libc.mallopt(_M_MMAP_THRESHOLD, mmap)


@contextmanager
def heap_kept() -> Iterator[None]:
    """Keep freed memory in glibc's heap while the block runs; trim the heap when it ends.

    Reentrant and thread-safe: the outermost block (of any thread) sets and restores.
    """
    global _depth
    libc = _glibc()
    if libc is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _mallopt(libc, _KEPT_TRIM_THRESHOLD, _KEPT_MMAP_THRESHOLD)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _mallopt(libc, _DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_THRESHOLD)
                libc.malloc_trim(0)
