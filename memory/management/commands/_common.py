"""Helpers shared by the memory commands: finding the workspace, reading times."""

from datetime import UTC, datetime

from django.core.management.base import CommandError
from django.utils.dateparse import parse_datetime

from campaigns.models import Workspace


def workspace_or_error(slug: str) -> Workspace:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise CommandError(f"No workspace with slug {slug!r}.")
    return workspace


def parse_as_of(value: str | None) -> datetime | None:
    """Read an ISO-8601 time (UTC when no offset is given), or None."""
    if value is None:
        return None
    moment = parse_datetime(value)
    if moment is None:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise CommandError(
                f"--as-of {value!r} is not an ISO-8601 time, e.g. 2018-01-22T00:00:00Z."
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
