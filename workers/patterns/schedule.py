"""Beat entries of the patterns pool."""

from __future__ import annotations

from typing import Any


def entries(settings) -> dict[str, dict[str, Any]]:
    return {}
