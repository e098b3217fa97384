"""Renderers that name the export formats, so `?format=jsonl|csv` picks one."""

import json

from rest_framework.renderers import BaseRenderer


class JsonLinesRenderer(BaseRenderer):
    """JSON Lines; the export streams its rows itself, this renders error bodies."""

    media_type = "application/x-ndjson"
    format = "jsonl"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return (json.dumps(data, ensure_ascii=False) + "\n").encode()


class CsvRenderer(JsonLinesRenderer):
    """CSV; errors are still a JSON body, which says more than a one-cell table."""

    media_type = "text/csv"
    format = "csv"
