"""Housekeeping that did nothing logs at DEBUG; work and other tasks keep INFO (issue #13 item 2).

Records are made the way Celery makes them (its own format strings and argument dicts), and go
through the loggers Celery writes them to."""

from __future__ import annotations

import logging

import pytest
from celery.app import trace

from workers import quiet_logs


@pytest.fixture()
def captured():
    quiet_logs.install()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.DEBUG)
    loggers = [logging.getLogger(n) for n in quiet_logs.LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    yield records, loggers
    for lg, level in zip(loggers, levels):
        lg.removeHandler(handler)
        lg.setLevel(level)


def _success(name: str, value: str) -> None:
    logging.getLogger("celery.app.trace").info(trace.LOG_SUCCESS, {"id": "x", "name": name, "return_value": value,
                                                                   "runtime": 0.01, "args": "()", "kwargs": "{}"})


def test_idle_housekeeping_is_debug_and_work_stays_info(captured):
    records, loggers = captured
    _success("ingest.drain", "{'batches': 0, 'read': 0, 'inserted': 0, 'users': 0}")
    _success("patterns.relay_outbox", "{'published': 0}")
    logging.getLogger("celery.worker.strategy").info(trace.LOG_RECEIVED, {"id": "y", "name": "notify.dispatch"})
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", "drain", "ingest.drain")
    assert records == []                                     # dropped at INFO
    _success("ingest.drain", "{'batches': 2, 'read': 450, 'inserted': 450, 'users': 41}")
    _success("patterns.relay_outbox", "{'published': 3}")
    _success("patterns.on_bars", "{'bars': 0, 'published': 0}")  # not housekeeping: always INFO
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", "scan-daily", "patterns.scan")
    assert [r.levelname for r in records] == ["INFO"] * 4
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    _success("ingest.drain", "{'batches': 0}")
    assert records[-1].levelname == "DEBUG"                  # still there for --loglevel DEBUG


@pytest.mark.parametrize("value,idle", [("{'published': 0}", True), ("{'a': 0.0, 'b': None, 'c': []}", True),
                                        ("{'published': 12}", False), ("{'x': True}", False),
                                        ("{'t': 0.25}", False), ("{'enqueued': 2}", False)])
def test_did_nothing(value, idle):
    assert quiet_logs.did_nothing(value) is idle
