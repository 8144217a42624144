"""A Celery app that SIGKILLs its worker between the atomic fetch and the unacked record.

``celery -A tests.workers.broker_victim worker -Q $BROKER_VICTIM_QUEUE --pool solo``: the
quantpipe app, plus one queue of the test's own, with ``Channel._record_fetched`` replaced by a
SIGKILL of the worker, so the kill lands in the fetch window on the first message.
"""

import os
import signal

from kombu import Exchange, Queue

import workers.broker
from workers.app import app

QUEUE = os.environ["BROKER_VICTIM_QUEUE"]
app.conf.task_queues = (*app.conf.task_queues, Queue(QUEUE, Exchange(QUEUE, type="direct"), routing_key=QUEUE))


def _die(self, item, inflight, queue):
    with open(os.environ["BROKER_VICTIM_MARK"], "w") as f:  # the test checks the kill came from here
        f.write(f"{queue} {inflight}")
    os.kill(os.getpid(), signal.SIGKILL)


workers.broker.Channel._record_fetched = _die
