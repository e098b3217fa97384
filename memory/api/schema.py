"""How the API's authentication, and the answers every operation can give, appear in the
OpenAPI schema."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "campaigns.tenancy.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A workspace API key: `Authorization: Bearer <key>`.",
        }


class SegmentWriteKeyScheme(OpenApiAuthenticationExtension):
    target_class = "memory.api.authentication.SegmentWriteKeyAuthentication"
    name = "writeKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": (
                "As Segment: the write key as the Basic user name with an empty password "
                "(or `writeKey` in the JSON body)."
            ),
        }


ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail` says why; a refused value is named by its field instead: "
    '`{"field": ["reason"]}`.',
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
# Answers any operation may give, and when: each documented with the error body above.
COMMON_ANSWERS = {
    "401": "Missing, wrong or revoked API key (or no signed-in session).",
    "403": "The key lacks the scope this operation needs, or the member the role.",
    "429": "Rate limited; retry after Retry-After seconds.",
}
NOT_FOUND = "No such object in this workspace (another workspace's id too), or a stale cursor."
BAD_REQUEST = "A refused value, named by its field, or a malformed body."


def document_common_answers(result, generator, request, public):
    """Add the answers every operation can give that the views do not list themselves.

    401, 403 and 429 everywhere; 404 where a path names an object or a list takes a cursor;
    400 where a body or a query parameter is read. Declared answers are kept as they are.
    """
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            answers = dict(COMMON_ANSWERS)
            if "{" in path or any(p.get("name") == "cursor" for p in parameters):
                answers["404"] = NOT_FOUND
            if "requestBody" in operation or any(p.get("in") == "query" for p in parameters):
                answers["400"] = BAD_REQUEST
            for code, description in answers.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": ERROR_SCHEMA}},
                    },
                )
    return result
