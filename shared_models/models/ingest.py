"""Tables of the ingest pool (migration: migrations/versions/*_ingest.py)."""

from __future__ import annotations

from ..base import Base  # noqa: F401
