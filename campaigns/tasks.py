"""Celery tasks for configuration: thin, ids in, one call each."""

from celery import shared_task
from django.db import connection

from campaigns.models import Workspace


@shared_task(name="campaigns.health_check")
def health_check() -> dict:
    """Prove a worker can reach the database: its vendor and how many workspaces it sees."""
    return {"database": connection.vendor, "workspaces": Workspace.objects.count()}
