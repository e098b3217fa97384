"""Prompt endpoints: a customer's prompt, the streaming export, the LLM preview and drafts."""
