"""Error answers in Segment's shape: `{"success": false, "error": ...}`, naming the limit."""

import psycopg
from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.exceptions import APIException

# The database went away under the request (restart, failover, a killed backend): its
# transaction is rolled back, so the whole request can be sent again.
DATABASE_CONNECTION_ERRORS = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
RETRY_AFTER_S = 1


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


class IngestUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "database_unavailable"

    def __init__(self):
        super().__init__()
        self.detail = {
            "success": False,
            "error": "the database connection was lost; nothing of this request was kept. "
            "Send it again: events stored before are recognised by their dedup key.",
            "retryable": True,
        }
