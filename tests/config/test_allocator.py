"""The allocator settings a recompute runs under: freed memory kept for reuse, trimmed after."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import allocator
from tests.config.heap_probe import BIG
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]


def heap_figures(scenario: str) -> dict[str, dict[str, int]]:
    """Run the scenario in a fresh process (the heap is the process's: see heap_probe)."""
    require(sys.platform == "linux" and allocator._glibc() is not None, "glibc's malloc on Linux")
    done = subprocess.run(
        [sys.executable, "-m", "tests.config.heap_probe", scenario],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_big_array_freed_in_the_block_stays_in_the_heap_until_the_block_ends():
    heap = heap_figures("kept")
    held, freed, inner_done, after = heap["held"], heap["freed"], heap["inner_done"], heap["after"]

    assert held["hblkhd"] < BIG  # served from the heap, not mapped on its own
    assert freed["fordblks"] - held["fordblks"] >= BIG  # kept for the next big array
    assert inner_done["fordblks"] - held["fordblks"] >= BIG  # the inner block did not trim
    assert after["keepcost"] < BIG  # trimmed once the outermost block ended
    assert after["fordblks"] - held["fordblks"] < BIG  # ... and the freed array went with it


def test_a_big_array_outside_the_block_is_mapped_on_its_own_and_given_straight_back():
    heap = heap_figures("default")
    before, held, freed = heap["before"], heap["held"], heap["freed"]

    assert held["hblkhd"] - before["hblkhd"] >= BIG
    assert freed["fordblks"] - held["fordblks"] < BIG
    assert freed["hblkhd"] - before["hblkhd"] < BIG


@pytest.mark.parametrize("existing", [None, "dirty_decay_ms:0"])
def test_polars_allocator_setting_keeps_what_the_environment_says(monkeypatch, existing):
    if existing is None:
        monkeypatch.delenv("_RJEM_MALLOC_CONF", raising=False)
    else:
        monkeypatch.setenv("_RJEM_MALLOC_CONF", existing)

    allocator.polars_allocator_configure()

    assert os.environ["_RJEM_MALLOC_CONF"] == (existing or allocator.JEMALLOC_CONF)
