"""The one liveness probe: ``<pool>.ping`` proves that a worker consuming the pool's queue,
with the pool's task module loaded, picked the task up. Each pool's ``tasks`` module
calls :func:`ping_task` once, so the name stays ``<pool>.ping``."""

from __future__ import annotations

import os
import socket

from celery import Task

from workers.app import app


def ping_task(pool: str) -> Task:
    @app.task(name=f"{pool}.ping", bind=True, ignore_result=False, acks_late=False)
    def ping(self) -> dict:
        return {"pool": pool, "hostname": self.request.hostname or socket.gethostname(), "pid": os.getpid()}

    ping.__doc__ = f"Liveness probe of the {pool} pool (returns its worker's hostname and pid)."
    return ping
