"""Recompute a workspace's memory: population statistics, customer shards, one atomic swap.

- ``plan``: what a run computes (mode, as-of time, customers, shards), fixed when it starts.
- ``inputs``: the engine's frames for some customers, read from the database.
- ``steps``: fit the population, compute a bucket, store or load shards, swap them in.
- ``runners``: in-process and streamed runs; ``chord``: the same steps on Celery workers.
- ``service``: ``recompute_request`` chooses where a run goes; the debounced schedule.
"""
