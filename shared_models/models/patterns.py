"""Tables of the patterns pool (migration: migrations/versions/*_patterns.py)."""

from __future__ import annotations

from ..base import Base  # noqa: F401
