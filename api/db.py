"""The API's database access: the one place its engine and URL are decided.

Requests never run as the owner role. The URL is ``QUANTPIPE_API_DATABASE_URL``
(a login role of the API's own) when set, else the process's database URL with
the startup option ``role=QUANTPIPE_API_DB_ROLE`` (``quantpipe_api``, created by
migration 0006 with only the grants the API's calls need). The role travels in
the URL, so every engine built from it, including the ingest client's, runs as
that role.

Two engines, one URL. ``engine()`` (psycopg2) serves the sync routes and every
write. ``async_engine()`` (asyncpg, autocommit) serves the hot read routes on the
event loop: no thread hop, and a read is one statement = one round trip (no
BEGIN/ROLLBACK, no pre-ping), like the benchmark's floor. Its pool is fixed at
QUANTPIPE_API_DB_POOL with no overflow: under load an overflow connection would be
opened and closed per request; a request waits for a pooled one instead. Without
the pre-ping, a connection broken by a PostgreSQL restart fails its one request
(503, Retry-After) and SQLAlchemy then discards the whole pool. JSON columns are
decoded with orjson (the stdlib decoder was the largest CPU cost of
``/discoveries/recent``: 20 documents per page).
"""

from __future__ import annotations

import contextlib
import functools
import re
from typing import AsyncIterator, Iterator

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from shared_models.db import database_url, normalize_url
from shared_models.settings import get_settings


def api_database_url() -> str:
    """The URL every API connection uses (with the API role)."""
    s = get_settings().api
    if s.database_url:
        return normalize_url(s.database_url)
    url = make_url(database_url())
    if not s.db_role:
        return url.render_as_string(hide_password=False)
    options = " ".join(filter(None, [url.query.get("options"), f"-c role={s.db_role}"]))
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


@functools.lru_cache(maxsize=1)
def engine() -> Engine:
    from sqlalchemy import create_engine

    s = get_settings().api
    return create_engine(api_database_url(), pool_pre_ping=True, pool_size=s.db_pool, max_overflow=s.db_pool,
                         pool_timeout=10)


@functools.lru_cache(maxsize=1)
def _sessions() -> sessionmaker[Session]:
    return sessionmaker(engine(), expire_on_commit=False)


@contextlib.contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction as the API role: commit on success, roll back on any error."""
    with _sessions()() as session, session.begin():
        yield session


def read_session() -> Session:
    """A session for read-only work (the caller closes it; no transaction is committed)."""
    return _sessions()()


def asyncpg_args(sync_url: str) -> tuple[str, dict]:
    """(URL, connect_args) for asyncpg from the libpq-style URL: ``options=-c k=v`` (the role) and
    ``application_name`` become server settings, ``sslmode`` is asyncpg's ``ssl``, ``connect_timeout`` its
    ``timeout``; ``host`` (a socket directory too) stays."""
    url = make_url(sync_url)
    query = dict(url.query)
    settings = dict(re.findall(r"-c\s*([\w.]+)=(\S+)", query.pop("options", "") or ""))
    if "application_name" in query:
        settings["application_name"] = query.pop("application_name")
    args: dict = {"server_settings": settings} if settings else {}
    if "sslmode" in query:
        args["ssl"] = query.pop("sslmode")
    if "connect_timeout" in query:
        args["timeout"] = float(query.pop("connect_timeout"))
    url = url.set(drivername="postgresql+asyncpg", query=query)
    return url.render_as_string(hide_password=False), args


@functools.lru_cache(maxsize=1)
def async_engine() -> AsyncEngine:
    import orjson
    from sqlalchemy.ext.asyncio import create_async_engine

    url, args = asyncpg_args(api_database_url())
    return create_async_engine(url, connect_args=args, isolation_level="AUTOCOMMIT",
                               json_deserializer=orjson.loads, pool_size=get_settings().api.db_pool,
                               max_overflow=0, pool_timeout=10, pool_recycle=1800)


@contextlib.asynccontextmanager
async def async_read() -> AsyncIterator[AsyncConnection]:
    """An autocommit connection of the async pool (each statement its own snapshot)."""
    async with async_engine().connect() as conn:
        yield conn


async def async_core(fn, *args, **kwargs):
    """``fn(conn, ...)``, a sync read function that only runs Core statements (``session.execute(select(
    columns))`` works on a Connection), on an autocommit asyncpg connection on the event loop (SQLAlchemy runs
    it in a greenlet). No ORM Session per request: that was a fifth of ``/discoveries/recent``'s CPU."""
    async with async_read() as conn:
        return await conn.run_sync(lambda c: fn(c, *args, **kwargs))
