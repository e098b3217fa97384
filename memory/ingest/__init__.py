"""Getting events in: Segment semantics, validation, timestamps, dedup keys and the bulk write.

The pieces, in the order an event meets them:
``body`` reads an HTTP body within Segment's limits, ``segment`` validates each event and turns
it into an ``EventRow`` (with ``timestamps`` and ``dedup``), ``messages`` resolves the messages
send events name, and ``store`` writes customers and events set-based (COPY on PostgreSQL).
``memory.services.events_ingest`` runs them in one transaction.
"""
