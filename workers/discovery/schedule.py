"""Beat entries of the discovery pool: the daily full scan, and the reconcile of stalled scans."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab


def entries(settings) -> dict[str, dict[str, Any]]:
    period = float(settings.discovery.reconcile_seconds)
    return {"daily-scan": {"task": "discovery.scan_all",
                           "schedule": crontab(hour=settings.discovery.scan_hour_utc, minute=15),
                           "options": {"expires": 6 * 3600}},
            "reconcile": {"task": "discovery.reconcile", "schedule": period, "options": {"expires": period}}}
