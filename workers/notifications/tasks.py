"""Celery tasks of the notify pool: thin bodies over ``delivery`` and ``watch``.

Both are safe to run any number of times at once: deliveries are claimed with
``SKIP LOCKED`` and leases, alerts are unique by key.
"""

from __future__ import annotations

import functools

from celery.signals import worker_process_init

from workers.app import app
from workers.ping import ping_task
from workers.retention import prune_task

ping = ping_task("notify")
prune = prune_task("notify")


@worker_process_init.connect
def _fresh_engine(**_: object) -> None:
    """The notify role's engine must not cross a fork (see workers.app._fresh_connections)."""
    from .db import engine

    engine.cache_clear()


@functools.lru_cache(maxsize=1)
def _redis():
    import redis

    from shared_models.db import redis_url

    return redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=5)


@app.task(name="notify.dispatch", ignore_result=True)
def dispatch(budget_seconds: float = 20.0) -> dict:
    """Send every due delivery (retries included) until none is due or the budget is spent."""
    from shared_models.settings import get_settings

    from .db import engine
    from .delivery import dispatch as run

    return run(engine(), get_settings(), budget_seconds=float(budget_seconds)).as_dict()


@app.task(name="notify.watch", ignore_result=True)
def watch() -> dict:
    """Raise patterns.producer_down and pipeline.dead_letters alerts when their facts hold."""
    from shared_models.settings import get_settings

    from .db import engine
    from .watch import run

    return run(engine(), _redis(), get_settings())
