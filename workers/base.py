"""Task base class: transient database/Redis errors are retried with backoff and jitter.

A restart of PostgreSQL or Redis in the middle of a task must end like a clean run, so a
lost connection is *transient* (retry the whole task: every task is one transaction and
idempotent), whatever class the driver happens to raise it as. psycopg2 reports a server
that went away as ``OperationalError`` on one code path and as a bare ``DatabaseError``
("server closed the connection unexpectedly") on another, so the class alone cannot
decide. ``is_transient`` looks at what the error *is*:

- a SQLSTATE (psycopg2 ``pgcode``, asyncpg ``sqlstate``) decides when there is one: class
  08 (connection), 40001/40P01 (serialization failure, deadlock), 53300 (too many
  connections), 55P03 (lock not available), 57P01-57P03/57P05 (server shutting down,
  crashed, starting up, idle session closed) are transient; every other code (a data error,
  a constraint, a missing privilege, a statement timeout) is not: retrying cannot fix it;
- without a SQLSTATE, a driver-level connection failure is transient (but not a refused
  login, a missing database or a bad DSN: configuration does not heal by waiting): SQLAlchemy marked
  the connection invalidated, psycopg2 ``OperationalError``/``InterfaceError``, or a
  ``DatabaseError`` whose message is one of the disconnect messages;
- Redis connection/timeouts (``BusyLoadingError`` while a restarted server loads its AOF,
  ``ReadOnlyError`` during a failover), kombu's broker ``OperationalError``, the pool's
  checkout timeout and plain ``ConnectionError``/``TimeoutError`` are transient.

An error that says nothing itself is judged by what it wraps (SQLAlchemy's ``orig``,
``raise … from``); an unrelated error raised while handling a transient one is not
transient (``__context__`` is not followed).

Retries go through ``Task.retry``, which keeps the request's chord and group: a retried
header task still counts once towards its chord, so the callback runs after it succeeds.
"""

from __future__ import annotations

import celery
import celery.exceptions
import celery.worker.consumer
import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc
from celery.utils.time import get_exponential_backoff_interval

TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "53300", "55P03", "57P01", "57P02", "57P03", "57P05"})
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08"})

# psycopg2/libpq messages of a connection that is gone (SQLAlchemy's psycopg2 dialect knows the same list)
DISCONNECT_MESSAGES = (
    "server closed the connection unexpectedly", "terminating connection", "closed the connection",
    "connection not open", "could not receive data from server", "could not send data to server",
    "connection already closed", "connection has been closed unexpectedly", "no connection to the server",
    "could not connect to server", "connection to server", "the database system is starting up",
    "the database system is shutting down", "the database system is in recovery mode", "ssl syscall error",
    "ssl connection has been closed unexpectedly", "lost synchronization with server",
)

# A failed connection attempt that retrying cannot fix (psycopg2 gives these no SQLSTATE).
PERMANENT_CONNECT_MESSAGES = (
    "password authentication failed", "no pg_hba.conf entry", "does not exist", "permission denied",
    "role is not permitted to log in", "invalid dsn", "invalid connection option", "certificate",
)

# Always transient, whatever their message (no SQLSTATE involved).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,  # connection pool checkout timed out
    redis.exceptions.ConnectionError,  # includes BusyLoadingError (a restarted server loading its AOF)
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a failover in progress
    kombu.exceptions.OperationalError,  # the broker is unreachable while publishing
    ConnectionError,
    TimeoutError,
)


def _sqlstate(exc: BaseException) -> str | None:
    code = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
    return code if isinstance(code, str) and len(code) == 5 else None


def _chain(exc: BaseException):
    """``exc``, the DBAPI error it wraps and its causes, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(x for x in (getattr(e, "orig", None), e.__cause__) if isinstance(x, BaseException))


def _one_is_transient(exc: BaseException) -> bool | None:
    """True/False when ``exc`` alone decides, None when it says nothing (look at its causes)."""
    code = _sqlstate(exc)
    if code is not None:
        return code in TRANSIENT_SQLSTATES or code[:2] in TRANSIENT_SQLSTATE_CLASSES
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return None  # the wrapped driver error decides
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    module = type(exc).__module__ or ""
    if module.startswith(("psycopg2", "asyncpg")):
        message = str(exc).lower()
        if any(m in message for m in PERMANENT_CONNECT_MESSAGES):
            return False
        if type(exc).__name__ in ("OperationalError", "InterfaceError", "ConnectionDoesNotExistError",
                                  "ConnectionFailureError", "PostgresConnectionError"):
            return True
        return any(m in message for m in DISCONNECT_MESSAGES)
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the whole unit of work can succeed (see the module docstring)."""
    for e in _chain(exc):
        verdict = _one_is_transient(e)
        if verdict is not None:
            return verdict
    return False


class PipelineTask(celery.Task):
    """Every quantpipe task is idempotent, so redelivery and retry are always safe."""

    autoretry_for: tuple = ()  # replaced by the classification in __call__
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 10
    acks_late = True
    reject_on_worker_lost = True

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except celery.exceptions.Retry:
            raise
        except Exception as exc:
            if self.request.called_directly or not is_transient(exc):
                raise
            countdown = get_exponential_backoff_interval(
                factor=self.retry_backoff, retries=self.request.retries, maximum=self.retry_backoff_max,
                full_jitter=self.retry_jitter)
            raise self.retry(exc=exc, countdown=countdown) from exc


class Consumer(celery.worker.consumer.Consumer):
    """The worker's consumer (``worker_consumer`` in celeryconfig), surviving a lost Redis.

    On a lost broker connection Celery (5.7) calls kombu's ``Connection.collect()``, which
    detaches the transport but keeps the default channel, and then ``connection.close()``,
    which closes that channel: the Redis channel tries to restore unacked messages through
    the detached transport and raises ``AttributeError`` (not a connection error), so the
    worker dies with "Unrecoverable error" instead of reconnecting. Forgetting the collected
    channel makes ``close()`` a no-op, as it is in Celery 5.6; unacked messages come back
    through the visibility timeout, as they do after a crash.
    """

    def on_connection_error_after_connected(self, exc):
        connection = self.connection
        if connection is not None:
            collect = connection.collect

            def collect_and_forget_channel(*args, **kwargs):
                try:
                    return collect(*args, **kwargs)
                finally:
                    connection._default_channel = None

            connection.collect = collect_and_forget_channel
        return super().on_connection_error_after_connected(exc)
