"""Beat entries of the patterns pool.

The heartbeat expires after one period: a heartbeat stuck behind a long scan is
dropped instead of being delivered late (the next one is on its way).
"""

from __future__ import annotations

from typing import Any


def entries(settings) -> dict[str, dict[str, Any]]:
    p = settings.patterns
    return {
        "heartbeat": {"task": "patterns.heartbeat", "schedule": p.heartbeat_seconds,
                      "options": {"expires": p.heartbeat_seconds}},
        "relay-outbox": {"task": "patterns.relay_outbox", "schedule": p.relay_interval_seconds,
                         "options": {"expires": p.relay_interval_seconds * 5}},
        "scan-daily": {"task": "patterns.scan", "schedule": p.scan_interval_seconds,
                       "kwargs": {"tier": "daily"}},
        "scan-intraday": {"task": "patterns.scan", "schedule": p.scan_interval_seconds,
                          "kwargs": {"tier": "intraday"}},
        "scan-combo": {"task": "patterns.scan", "schedule": p.scan_interval_seconds,
                       "kwargs": {"tier": "combo"}},
    }
