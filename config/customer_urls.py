"""Customer ids in URLs: any text ingestion accepts (slashes, dots, '%', '?', '#', newlines).

The `external_id` path converter matches any non-empty text, slashes and newlines included
(WSGI servers decode %2F to '/'). `customer_url` builds a link with the id as one segment:
'/' quoted as %2F and an id of '.' or '..' as %2E, since clients collapse dot segments.
"""

from urllib.parse import quote

from django import template
from django.urls import register_converter, reverse

_MARKER = "customer-id-placeholder"


class ExternalIdConverter:
    regex = r"(?s:.+)"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ExternalIdConverter, "external_id")


def id_segment(external_id: str) -> str:
    """Return the id quoted as one URL path segment."""
    quoted = quote(external_id, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def customer_url(viewname: str, external_id: str) -> str:
    """Reverse a route taking one customer id, with the id quoted as one segment."""
    return reverse(viewname, args=[_MARKER]).replace(_MARKER, id_segment(external_id))


register = template.Library()


@register.simple_tag(name="customer_url")
def customer_url_tag(viewname: str, external_id) -> str:
    return customer_url(viewname, str(external_id))
