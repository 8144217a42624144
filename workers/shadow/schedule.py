"""Beat entries of the shadow pool: the rollback monitor and a safety-net evaluation sweep."""

from __future__ import annotations

from typing import Any


def entries(settings) -> dict[str, dict[str, Any]]:
    if not settings.shadow.enabled:
        return {}
    period = float(settings.shadow.monitor_seconds)
    return {
        "rollback-monitor": {"task": "shadow.monitor", "schedule": period, "options": {"expires": period}},
        "evaluate-sweep": {"task": "shadow.evaluate_all", "schedule": 10 * period,
                           "options": {"expires": 10 * period}},
    }
