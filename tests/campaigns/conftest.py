"""Fixtures of the prompt, LLM and webhook tests (defined in prompt_support.py)."""

from tests.campaigns.prompt_support import fake_llm, receiver, rich_customer  # noqa: F401
