"""Ask for the debounced recompute after ingestion, without depending on Redis to store events.

The debounce flag lives in the cache and the task goes to the broker, both Redis. When either
does not answer, the request is written to the `RecomputeOutbox` table instead: inside the
ingest transaction (it commits with the events, never rolls them back), or after commit when
only the broker failed. `recompute_outbox_drain` (the beat, every minute, and each successful
enqueue) queues what the outbox holds.
"""

import logging
from contextlib import suppress

from celery import signature
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from memory.cache_fallback import CACHE_ERRORS, cache_unavailable
from memory.models import RecomputeOutbox
from memory.recompute.chord import WORKSPACE_TASK
from memory.recompute.service import DEBOUNCE_S, pending_key

logger = logging.getLogger(__name__)

BROKER_ERRORS = (BrokerError, *CACHE_ERRORS)


def recompute_request(*, workspace_id: int) -> None:
    """Ask for an incremental recompute soon (debounced); record it in the outbox if Redis fails.

    Without a broker (the laptop demo) nothing is queued, as before: the next recompute asked
    for on the page or the command line picks the new events up.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    try:
        first = cache.add(pending_key(workspace_id), 1, timeout=DEBOUNCE_S)
    except CACHE_ERRORS as error:
        cache_unavailable("the recompute debounce; recorded in the outbox instead", error)
        _outbox_add(workspace_id)
        return
    if first:
        transaction.on_commit(lambda: _enqueue(workspace_id))


def _enqueue(workspace_id: int) -> None:
    try:
        signature(WORKSPACE_TASK, args=(workspace_id,)).apply_async(countdown=DEBOUNCE_S)
    except BROKER_ERRORS as error:
        cache_unavailable("queueing a recompute; recorded in the outbox instead", error)
        with suppress(*CACHE_ERRORS):
            cache.delete(pending_key(workspace_id))  # let the next ingest try again
        _outbox_add(workspace_id)
        return
    recompute_outbox_drain()


def _outbox_add(workspace_id: int) -> None:
    """Record the request once per workspace (a second one while it waits adds nothing)."""
    RecomputeOutbox.objects.bulk_create(
        [RecomputeOutbox(workspace_id=workspace_id, requested_at=timezone.now())],
        ignore_conflicts=True,
    )


def recompute_outbox_drain() -> int:
    """Queue a recompute for each workspace the outbox holds; return how many were queued.

    A row is deleted only once its task is queued, and only if no newer request replaced it;
    when the broker still does not answer, the rows stay for the next drain.
    """
    queued = 0
    for workspace_id, requested_at in RecomputeOutbox.objects.values_list(
        "workspace_id", "requested_at"
    ):
        try:
            signature(WORKSPACE_TASK, args=(workspace_id,)).apply_async()
        except BROKER_ERRORS as error:
            cache_unavailable("draining the recompute outbox; kept for the next drain", error)
            break
        RecomputeOutbox.objects.filter(
            workspace_id=workspace_id, requested_at=requested_at
        ).delete()
        queued += 1
    if queued:
        logger.info("Queued %d recompute(s) the outbox held.", queued)
    return queued
