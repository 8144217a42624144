"""Beat entries of the discovery pool."""

from __future__ import annotations

from typing import Any


def entries(settings) -> dict[str, dict[str, Any]]:
    return {}
