"""Signals the memory app sends, so other apps react without memory importing them."""

from django.dispatch import Signal

# Sent once a recompute's rows are committed, with workspace_id and run_id.
memory_recomputed = Signal()

# Sent inside the transaction that erases a customer, before their rows go, with workspace_id,
# customer_id and external_id: receivers erase what their app keeps about the customer.
customer_erasing = Signal()
