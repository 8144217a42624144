"""Beat entries of the ingest pool."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab


def entries(settings) -> dict[str, dict[str, Any]]:
    return {
        # Drain kick: a drain that finds the stream empty returns at once; expiring kicks are
        # dropped instead of piling up behind a long drain.
        "drain": {"task": "ingest.drain", "schedule": 1.0, "options": {"expires": 5}},
        "purge-events": {"task": "ingest.purge_events", "schedule": crontab(minute=17, hour=3)},
    }
