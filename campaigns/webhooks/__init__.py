"""Webhooks: each customer's changed prompt POSTed, signed, to URLs the marketer registers.

- signing.py: the X-Primer-Signature header (HMAC-SHA256 over "<t>.<body>") and its check
- services.py: register, find changed prompts after a recompute, attempt one delivery
- selectors.py: webhooks and their delivery log
"""
