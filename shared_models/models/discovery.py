"""Tables of the discovery pool (migration: migrations/versions/*_discovery.py)."""

from __future__ import annotations

from ..base import Base  # noqa: F401
