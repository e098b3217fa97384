"""The HTTP face of memory: Segment-compatible ingestion and the native events API."""
