"""Transient or not: a lost connection is retried, a data error is not (workers/base.py)."""

from __future__ import annotations

import socket

import kombu.exceptions
import psycopg2
import pytest
import redis
import sqlalchemy.exc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support import PostgresServer
from workers.base import PipelineTask, is_transient


def _raised(engine, sql: str, params: dict | None = None) -> BaseException:
    with engine.connect() as c:
        try:
            c.execute(text(sql), params or {})
        except sqlalchemy.exc.DBAPIError as exc:
            return exc
    raise AssertionError(f"{sql} did not fail")


def test_data_errors_are_not_transient(engine):
    assert not is_transient(_raised(engine, "SELECT 1/0"))  # 22012
    assert not is_transient(_raised(engine, "SELECT 'x'::int"))  # 22P02
    assert not is_transient(_raised(engine, "SELECT * FROM no_such_table"))  # 42P01
    assert not is_transient(_raised(engine, "INSERT INTO market_bars (symbol, timeframe, ts, open, high, low, close, "
                                            "volume) VALUES ('X', '1d', now(), 1, 0, 2, 1, 1)"))  # 23514
    with engine.connect() as c:  # a statement timeout: retrying the same work times out again
        c.execute(text("SET statement_timeout = '50ms'"))
        with pytest.raises(sqlalchemy.exc.OperationalError) as info:
            c.execute(text("SELECT pg_sleep(1)"))
        assert info.value.orig.pgcode == "57014" and not is_transient(info.value)


def test_a_missing_privilege_is_not_transient(engine):
    with engine.connect() as c, c.begin():
        c.execute(text("SET LOCAL ROLE quantpipe_discovery"))
        with pytest.raises(sqlalchemy.exc.ProgrammingError) as info:
            c.execute(text("DELETE FROM trades"))
    assert info.value.orig.pgcode == "42501" and not is_transient(info.value)


def test_a_killed_session_is_transient(engine):
    with engine.connect() as victim, engine.connect() as admin:
        pid = victim.execute(text("SELECT pg_backend_pid()")).scalar()
        admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with pytest.raises(sqlalchemy.exc.DBAPIError) as info:
            victim.execute(text("SELECT 1"))
    assert is_transient(info.value)


def test_a_restarted_server_is_transient_while_down_and_after():
    """The error of issue #9 item 5: psycopg2.DatabaseError 'server closed the connection unexpectedly'."""
    with PostgresServer() as pg:
        engine = create_engine(make_url(pg.url()).set(drivername="postgresql+psycopg2"))
        conn = engine.connect()
        conn.execute(text("SELECT 1"))
        pg.stop("immediate")
        with pytest.raises(sqlalchemy.exc.DBAPIError) as lost:
            conn.execute(text("SELECT 1"))
        with pytest.raises(sqlalchemy.exc.OperationalError) as down:
            engine.connect()
        pg.start()
        with engine.connect() as again:
            assert again.execute(text("SELECT 1")).scalar() == 1
        engine.dispose()
    assert is_transient(lost.value) and is_transient(down.value)
    assert "server closed the connection unexpectedly" in str(lost.value) or lost.value.connection_invalidated


def test_configuration_errors_are_not_transient(database_url):
    url = make_url(database_url).set(database="qp_no_such_database_here")
    with pytest.raises(sqlalchemy.exc.OperationalError) as info:
        create_engine(url).connect()
    assert not is_transient(info.value)


def test_driver_and_broker_errors_without_a_code():
    assert is_transient(psycopg2.DatabaseError("server closed the connection unexpectedly\n\tThis probably means "
                                               "the server terminated abnormally"))
    assert is_transient(psycopg2.InterfaceError("connection already closed"))
    assert not is_transient(psycopg2.DatabaseError("invalid input syntax"))
    assert is_transient(redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"))
    assert is_transient(redis.exceptions.ConnectionError("Connection refused"))
    assert is_transient(kombu.exceptions.OperationalError("Error 111 connecting to localhost:6379"))
    assert is_transient(socket.timeout("timed out"))
    assert not is_transient(ValueError("price: not finite"))
    assert not is_transient(KeyError("symbol"))
    wrapped = RuntimeError("scan failed")
    wrapped.__cause__ = psycopg2.OperationalError("could not receive data from server")
    assert is_transient(wrapped)
    handled = ValueError("bad field")  # raised while handling a lost connection: still a data error
    handled.__context__ = psycopg2.OperationalError("server closed the connection unexpectedly")
    assert not is_transient(handled)


def test_pipeline_tasks_do_not_use_celerys_class_based_autoretry():
    """Classification replaces autoretry_for: OperationalError(57014) must not be retried by class."""
    assert PipelineTask.autoretry_for == ()
    from workers.app import app

    assert all(not getattr(t, "autoretry_for", ()) for name, t in app.tasks.items() if not name.startswith("celery."))
