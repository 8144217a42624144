"""The Celery app. Workers: ``celery -A workers.app worker -Q <pool>`` (or ``quantpipe worker``).

Importing this module registers no pool's tasks: a worker imports only the task
modules of the pools whose queues it consumes (``-Q``; every pool without ``-Q``),
so an ingest worker never loads networkx, statsmodels, TA-Lib or the shadow
statistics. Everyone else (beat, Flower, the CLI, the API, another pool's task)
sends by name: ``app.send_task("ingest.drain")`` or ``app.signature("ingest.drain")``;
routes go by name prefix (``workers.routing``). A client that wants task objects
imports the pool's ``tasks`` module, or calls :func:`load_pools`.
"""

from __future__ import annotations

import importlib
from typing import Iterable

from celery import Celery
from celery.signals import after_setup_logger, celeryd_init, worker_process_init

from .base import PipelineTask
from .routing import POOL_PACKAGES, POOLS

app = Celery("quantpipe", task_cls=PipelineTask)
app.config_from_object("celeryconfig")


def load_pools(pools: Iterable[str]) -> list[str]:
    """Import (and so register) the task modules of ``pools``; returns the modules imported."""
    modules = [f"{POOL_PACKAGES[pool]}.tasks" for pool in pools]
    for module in modules:
        importlib.import_module(module)
    return modules


def consumed_pools(queues: Iterable[str] | None, exclude: Iterable[str] | None = ()) -> list[str]:
    """The pools a worker started with ``-Q queues -X exclude`` consumes (all of them without ``-Q``)."""
    wanted = [q for q in queues if q in POOLS] if queues else list(POOLS)
    return [p for p in wanted if p not in set(exclude or ())]


@celeryd_init.connect
def _load_consumed_pools(options: dict | None = None, **_: object) -> None:
    """Runs in the worker's main process after ``-Q`` is parsed and before pool children fork."""
    options = options or {}
    pools = consumed_pools(options.get("queues"), options.get("exclude_queues"))
    load_pools(pools)
    if len(pools) == 1:  # least privilege: a worker of one pool connects as that pool's role
        import logging

        from shared_models.db import use_pool

        logging.getLogger(__name__).info("pool %s: database %s", pools[0], use_pool(pools[0]))


@after_setup_logger.connect
def _quiet_housekeeping(**_: object) -> None:
    """Housekeeping runs that did nothing log at DEBUG (workers and beat)."""
    from .quiet_logs import install

    install()


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    """A pooled connection must never be shared between a parent and a forked child."""
    from shared_models.db import dispose_engines

    dispose_engines()
