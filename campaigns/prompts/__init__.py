"""Personalized prompts: each customer's memory rendered through a marketer's template.

- context.py: the documented template context, read set-based for chunks of customers
- quoting.py: how customer-supplied strings stay quoted, one-line, length-limited data
- engine.py: the sandboxed template engine, rendering, the content hash
- selectors.py / services.py: reads (prompts one by one or streamed) and writes (versions)
- export.py: JSON Lines and CSV encodings shared by the API, the command and the bench
- similarity.py: how close drafted messages are to the workspace's existing ones
"""
