"""Housekeeping that did nothing logs at DEBUG, not INFO (issue #13 item 2).

Beat sends ``ingest.drain`` every second and the relay, dispatcher and watchdogs every few:
at INFO their "Sending due task", "received" and "succeeded … {'batches': 0, …}" lines were
thousands per hour and buried the work. This filter lowers exactly those records to DEBUG
(dropped unless the logger is at DEBUG); a housekeeping run that did something (a non-zero
count or a true flag in its result) and every other task keep their INFO lines.
"""

from __future__ import annotations

import logging
import re

HOUSEKEEPING = frozenset({"ingest.drain", "patterns.relay_outbox", "notify.dispatch", "notify.watch",
                          "shadow.monitor", "shadow.evaluate_all"})
_NONZERO = re.compile(r"(?<![\w.])-?(?:0*[1-9]\d*(?:\.\d+)?|0*\.\d*[1-9]\d*)(?![\w])|\bTrue\b")


def did_nothing(return_value: object) -> bool:
    """A result repr with no non-zero number and no True, e.g. "{'batches': 0, 'inserted': 0}"."""
    return _NONZERO.search(str(return_value)) is None


def _task_name(record: logging.LogRecord) -> str | None:
    args = record.args
    if isinstance(args, dict):
        return args.get("name")
    return None


class QuietHousekeeping(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        quiet = False
        if record.name == "celery.beat":
            args = record.args if isinstance(record.args, tuple) else ()
            quiet = len(args) > 1 and args[1] in HOUSEKEEPING  # ("Sending due task %s (%s)", entry, task)
        elif _task_name(record) in HOUSEKEEPING:
            if "return_value" in record.args:  # type: ignore[operator]
                quiet = did_nothing(record.args["return_value"])  # type: ignore[index]
            else:
                quiet = "received" in str(record.msg)
        if not quiet:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


def install() -> None:
    """Attach the filter to the loggers that write those lines (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietHousekeeping) for f in logger.filters):
            logger.addFilter(QuietHousekeeping())
