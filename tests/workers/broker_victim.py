"""A Celery app on a test queue of its own, to kill a real worker in the fetch window.

``celery -A tests.workers.broker_victim worker -Q $BROKER_VICTIM_QUEUE --pool solo``: the
quantpipe app plus that queue and one task, ``broker_victim.touch`` (INCR of a Redis key, so a
test counts executions). With ``BROKER_VICTIM_MARK`` set, ``Channel._record_fetched`` is replaced
by a SIGKILL of the worker, so the kill lands between the atomic fetch and the unacked record
on the first message; without it the worker is a survivor whose restore sweep treats an inflight
list as stale after 2 s and sweeps every second (production: 60 s, every 10 s).
"""

import os
import signal

import redis
from kombu import Exchange, Queue

import workers.broker
from shared_models.db import redis_url
from workers.app import app

QUEUE = os.environ["BROKER_VICTIM_QUEUE"]
app.conf.task_queues = (*app.conf.task_queues, Queue(QUEUE, Exchange(QUEUE, type="direct"), routing_key=QUEUE))
app.conf.broker_transport_options = {**app.conf.broker_transport_options, "inflight_stale_after": 2,
                                     "unacked_restore_interval": 1}


@app.task(name="broker_victim.touch")
def touch(key: str) -> None:
    redis.Redis.from_url(redis_url()).incr(key)


def _die(self, item, inflight, queue):
    with open(os.environ["BROKER_VICTIM_MARK"], "w") as f:  # the test checks the kill came from here
        f.write(f"{queue} {inflight}")
    os.kill(os.getpid(), signal.SIGKILL)


if os.environ.get("BROKER_VICTIM_MARK"):
    workers.broker.Channel._record_fetched = _die
