"""``<pool>.prune``: each pool deletes its own expired rows (``shared_models.retention``), as its
own role, every QUANTPIPE_RETAIN_INTERVAL_SECONDS (``workers.beat_schedule`` adds one entry
per pool). Each pool's ``tasks`` module calls :func:`prune_task` once."""

from __future__ import annotations

from celery import Task

from workers.app import app


def prune_task(pool: str) -> Task:
    @app.task(name=f"{pool}.prune", ignore_result=False)
    def prune(batch_rows: int | None = None, max_seconds: float = 120.0) -> dict:
        from shared_models.db import get_engine
        from shared_models.retention import prune as run, rules
        from shared_models.settings import get_settings

        s = get_settings()
        return run(get_engine(), rules(pool, s), int(batch_rows or s.retention.batch_rows), float(max_seconds))

    prune.__doc__ = f"Retention of the {pool} pool: delete its expired rows in bounded batches (idempotent)."
    return prune
