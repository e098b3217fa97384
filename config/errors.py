"""Error pages: the API's unmatched URLs answer JSON, like every other API error."""

from django.http import JsonResponse
from django.views.defaults import page_not_found

API_PREFIXES = ("/api/", "/v1/")


def not_found(request, exception):
    """404: JSON under the API's paths (a client parses it), the HTML page elsewhere."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
