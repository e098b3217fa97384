"""Primer's memory engine: pure numpy/polars math from events to per-customer memories."""

from memory.scoring.frames import EngineConfig
from memory.scoring.pipeline import MemoryResult, compute_memory, rank_messages, score_candidates

__all__ = ["EngineConfig", "MemoryResult", "compute_memory", "rank_messages", "score_candidates"]
