"""Celery tasks of the discovery pool: thin bodies that call the pool's pure logic."""

from __future__ import annotations

import os
import socket

from workers.app import app


@app.task(name="discovery.ping", ignore_result=False, acks_late=False)
def ping() -> dict:
    """Liveness probe: proves a worker of this queue picked the task up."""
    return {"pool": "discovery", "hostname": ping.request.hostname or socket.gethostname(), "pid": os.getpid()}
