"""Beat entries of the patterns pool.

No heartbeat here: each patterns worker beats from its main process (``liveness.HeartbeatThread``),
so the heartbeat never waits behind a scan on the patterns queue.
"""

from __future__ import annotations

from typing import Any


def entries(settings) -> dict[str, dict[str, Any]]:
    p = settings.patterns
    return {
        "relay-outbox": {"task": "patterns.relay_outbox", "schedule": p.relay_interval_seconds,
                         "options": {"expires": p.relay_interval_seconds * 5}},
        "scan-daily": {"task": "patterns.scan", "schedule": p.scan_interval_seconds,
                       "kwargs": {"tier": "daily"}},
        "scan-intraday": {"task": "patterns.scan", "schedule": p.scan_interval_seconds,
                          "kwargs": {"tier": "intraday"}},
        "scan-combo": {"task": "patterns.scan", "schedule": p.scan_interval_seconds,
                       "kwargs": {"tier": "combo"}},
    }
