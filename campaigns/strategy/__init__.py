"""Guardrails and overrides: the marketer's levers on what is offered (decision 0260)."""
