"""Beat entries of the notify pool: the outbox dispatcher and the watchdog.

Both expire after one period: a late run is useless, the next one is on its way.
"""

from __future__ import annotations

from typing import Any


def entries(settings) -> dict[str, dict[str, Any]]:
    n = settings.notify
    return {
        "dispatch": {"task": "notify.dispatch", "schedule": n.poll_seconds, "options": {"expires": n.poll_seconds}},
        "watch": {"task": "notify.watch", "schedule": n.watch_seconds, "options": {"expires": n.watch_seconds}},
    }
