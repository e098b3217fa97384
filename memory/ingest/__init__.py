"""Getting events in: Segment semantics, validation, timestamps, dedup keys and the bulk write.

The pieces, in the order an event meets them:
``body`` reads an HTTP body within Segment's limits, ``segment`` validates each event and turns
it into an ``EventRow`` (with ``timestamps`` and ``dedup``), ``messages`` resolves the messages
send events name, and ``store`` writes customers and events set-based (COPY on PostgreSQL).
``structure`` finds item boundaries and nesting depth without decoding (so one hostile item
costs only itself), ``label_caps`` holds the labels send events may create to the workspace's
caps, and ``outbox`` asks for the debounced recompute, in the database when Redis is gone.
``memory.services.events_ingest`` runs them in one transaction.
"""
