"""The Celery app. Workers: ``celery -A workers.app worker -Q <pool>`` (or ``quantpipe worker``)."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from .base import PipelineTask

app = Celery("quantpipe", task_cls=PipelineTask)
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["workers.ingestion", "workers.patterns", "workers.discovery", "workers.shadow"],
                       related_name="tasks", force=True)


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    """A pooled connection must never be shared between a parent and a forked child."""
    from shared_models.db import dispose_engines

    dispose_engines()
