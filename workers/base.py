"""Task base class: transient database/Redis errors are retried with backoff and jitter."""

from __future__ import annotations

import celery
import redis.exceptions
import sqlalchemy.exc

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


class PipelineTask(celery.Task):
    """Every quantpipe task is idempotent, so redelivery and retry are always safe."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 10
    acks_late = True
    reject_on_worker_lost = True
