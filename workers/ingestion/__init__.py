"""The ingest pool."""
