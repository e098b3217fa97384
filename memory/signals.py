"""Signals the memory app sends, so other apps react without memory importing them."""

from django.dispatch import Signal

# Sent once a recompute's rows are committed, with workspace_id and run_id.
memory_recomputed = Signal()
