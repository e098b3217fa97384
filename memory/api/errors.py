"""Error answers in Segment's shape: `{"success": false, "error": ...}`, naming the limit."""

from rest_framework import status
from rest_framework.exceptions import APIException


class IngestBadRequest(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"

    def __init__(self, detail: dict):
        super().__init__()
        self.detail = detail  # kept as is: DRF would turn `false` into the string "False"


def bad_request(error: str, *, limit: str = "", field: str | None = None) -> IngestBadRequest:
    """Return a 400 whose body says what was wrong (and which limit, or which field)."""
    detail: dict = {"success": False, "error": error}
    if limit:
        detail["limit"] = limit
    if field is not None:
        detail["field"] = field
    return IngestBadRequest(detail)
