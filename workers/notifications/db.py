"""The notify pool's database access: its own least-privilege role (migration 0012).

The URL is the process's DATABASE_URL with the startup option ``role=QUANTPIPE_NOTIFY_DB_ROLE``
(``quantpipe_notify``: reads subscriptions and their secrets, works the outbox, records
attempts, keeps dead letters), the way the API takes ``quantpipe_api``.
"""

from __future__ import annotations

import functools

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from shared_models.db import database_url, normalize_url


def role_url(url: str | None = None, role: str | None = None) -> str:
    from shared_models.settings import get_settings

    role = get_settings().notify.db_role if role is None else role
    parsed = make_url(normalize_url(url or database_url()))
    if not role:
        return parsed.render_as_string(hide_password=False)
    options = " ".join(filter(None, [parsed.query.get("options"), f"-c role={role}"]))
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


@functools.lru_cache(maxsize=4)
def engine(url: str | None = None) -> Engine:
    """The notify role's engine (one per process and URL)."""
    return create_engine(role_url(url), pool_pre_ping=True, pool_size=4, max_overflow=8, pool_timeout=10)
