"""Fixtures of the prompt, LLM, webhook and configuration tests (in *_support.py)."""

from tests.campaigns.config_support import (  # noqa: F401
    admin_key,
    config_key,
    owner,
    owner_client,
    their_config_key,
    viewer,
    viewer_client,
)
from tests.campaigns.prompt_support import fake_llm, receiver, rich_customer  # noqa: F401
from tests.campaigns.strategy_support import strategy_catalogue  # noqa: F401
