"""Queues and routes: a task's name prefix is its pool, and its pool is its queue.

Routing needs only the name, so any process can send any pool's task without
importing that pool's code (see ``workers.app``).
"""

from kombu import Exchange, Queue

POOLS = ("ingest", "patterns", "discovery", "shadow", "notify")
# where each pool's code lives (its ``tasks`` and ``schedule`` modules)
POOL_PACKAGES = {"ingest": "workers.ingestion", "patterns": "workers.patterns", "discovery": "workers.discovery",
                 "shadow": "workers.shadow", "notify": "workers.notifications"}

QUEUES = tuple(Queue(pool, Exchange(pool, type="direct"), routing_key=pool) for pool in POOLS)
TASK_ROUTES = {f"{pool}.*": {"queue": pool, "routing_key": pool} for pool in POOLS}


def pool_of(task_name: str) -> str:
    pool = task_name.split(".", 1)[0]
    if pool not in POOLS:
        raise ValueError(f"task {task_name!r} has no pool prefix ({', '.join(POOLS)})")
    return pool


def queue_depth(redis_client, queue: str) -> int:
    """Messages waiting in a kombu Redis queue (all priority sub-lists)."""
    keys = [queue] + [f"{queue}\x06\x16{p}" for p in range(1, 10)]
    pipe = redis_client.pipeline()
    for k in keys:
        pipe.llen(k)
    return int(sum(pipe.execute()))
