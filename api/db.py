"""The API's database access: the one place its engine and URL are decided.

Requests never run as the owner role. The URL is ``QUANTPIPE_API_DATABASE_URL``
(a login role of the API's own) when set, else the process's database URL with
the startup option ``role=QUANTPIPE_API_DB_ROLE`` (``quantpipe_api``, created by
migration 0006 with only the grants the API's calls need). The role travels in
the URL, so every engine built from it, including the ingest client's, runs as
that role.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator
from sqlalchemy import Engine
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
