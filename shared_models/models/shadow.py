"""Tables of the shadow pool (migration: migrations/versions/*_shadow.py)."""

from __future__ import annotations

from ..base import Base  # noqa: F401
