"""Engine and session factory: one engine per process and URL, sessions as units of work."""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from .settings import get_settings


def normalize_url(url: str) -> str:
    """Accept postgresql://, postgresql+psycopg2:// and postgresql+asyncpg:// and return the sync form."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError(f"DATABASE_URL: not a PostgreSQL URL: {url.split('://', 1)[0]!r}")
    return "postgresql+psycopg2://" + rest


@functools.lru_cache(maxsize=1)
def _resolved_urls() -> tuple[str, str]:
    from .embedded import resolve_urls

    db, rd = resolve_urls(get_settings())
    return normalize_url(db), rd


_POOL: dict[str, str] = {}  # {"pool": name, "url": its login's URL} once use_pool() ran


def service_urls() -> tuple[str, str]:
    """(database_url, redis_url) for this process: configured, or the embedded servers'; in a
    worker of one pool (:func:`use_pool`) the database URL is that pool's role's."""
    db, rd = _resolved_urls()
    return _POOL.get("url", db), rd


def use_pool(pool: str) -> str:
    """From now on this process reaches PostgreSQL as ``pool``'s role (``shared_models.roles``);
    called by a worker of one pool before its children fork. Returns the URL (password hidden)."""
    from sqlalchemy.engine import make_url

    from .roles import pool_database_url

    url = normalize_url(pool_database_url(pool, _resolved_urls()[0], get_settings()))
    _POOL.update(pool=pool, url=url)
    return make_url(url).render_as_string(hide_password=True)


def current_pool() -> str | None:
    """The pool whose role this process uses (None: the configured URL's user)."""
    return _POOL.get("pool")


def database_url() -> str:
    return service_urls()[0]


def redis_url() -> str:
    return service_urls()[1]


_ENGINES: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for ``url`` (default: the configured database)."""
    key = normalize_url(url or database_url())
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = create_engine(key, pool_pre_ping=True, pool_size=5, max_overflow=10)
    return engine


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextlib.contextmanager
def unit_of_work(url: str | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with session_factory(url)() as session, session.begin():
        yield session


def dispose_engines() -> None:
    """Forget pooled connections; called in each forked worker child so none crosses a fork."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)
