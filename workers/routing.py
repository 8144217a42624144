"""Queues and routes: a task's name prefix is its pool, and its pool is its queue."""

from kombu import Exchange, Queue

POOLS = ("ingest", "patterns", "discovery", "shadow")

QUEUES = tuple(Queue(pool, Exchange(pool, type="direct"), routing_key=pool) for pool in POOLS)
TASK_ROUTES = {f"{pool}.*": {"queue": pool, "routing_key": pool} for pool in POOLS}


def pool_of(task_name: str) -> str:
    pool = task_name.split(".", 1)[0]
    if pool not in POOLS:
        raise ValueError(f"task {task_name!r} has no pool prefix ({', '.join(POOLS)})")
    return pool
