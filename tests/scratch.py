"""Throwaway environments for tests and benchmarks: real servers plus a fresh database.

DATABASE_URL / REDIS_URL set: a fresh database is created on that PostgreSQL and that
Redis is used. Unset: embedded PostgreSQL and Redis are started in a temporary
QUANTPIPE_HOME. Either way the process environment is set before any quantpipe
module reads settings, so worker subprocesses attach to the same servers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared_models.db import normalize_url


def create_database(server_url: str, prefix: str = "qp_scratch") -> str:
    """Create ``<prefix>_<random>`` on the server of ``server_url``; return its URL."""
    url = make_url(normalize_url(server_url))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str, maintenance_db: str = "postgres") -> None:
    """Drop the database of ``database_url`` (closing its connections)."""
    url = make_url(normalize_url(database_url))
    engine = create_engine(url.set(database=maintenance_db), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        engine.dispose()


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "qp_scratch", migrated: bool = False):
    """(url, engine) of a fresh database on the server of ``server_url`` (at migration head with
    ``migrated``), dropped afterwards: the body of every scratch-database fixture."""
    url = create_database(server_url, prefix)
    if migrated:
        from shared_models import migrate

        migrate.upgrade(url)
    engine = create_engine(url)
    try:
        yield url, engine
    finally:
        engine.dispose()
        drop_database(url, make_url(normalize_url(server_url)).database)

@dataclass
class ScratchEnv:
    home: Path
    database_url: str
    redis_url: str
    embedded: bool
    server_url: str

    def close(self) -> None:
        """Drop the database, stop embedded servers, remove the temporary home."""
        from shared_models import embedded
        from shared_models.db import dispose_engines

        dispose_engines()
        try:
            drop_database(self.database_url, make_url(normalize_url(self.server_url)).database or "postgres")
        finally:
            if self.embedded:
                embedded.stop_services(self.home)
            shutil.rmtree(self.home, ignore_errors=True)


def start(prefix: str = "qp_scratch", *, migrate: bool = True) -> ScratchEnv:
    """Servers + a fresh (migrated) database, exported through os.environ."""
    from shared_models import embedded

    # pgserver runs PostgreSQL as an unprivileged user when we are root: keep the home traversable
    home = Path(tempfile.mkdtemp(prefix=prefix.replace("_", "-") + "-home-"))
    os.chmod(home, 0o755)
    os.environ.update(QUANTPIPE_HOME=str(home), QUANTPIPE_LOG_DIR=str(home / "logs"))
    db, rd = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    db_given = bool(db)
    started = not db or not rd
    if started:
        state = embedded.ensure_services(home, postgres=not db, redis=not rd)
        db, rd = db or state.database_url, rd or state.redis_url
    env = ScratchEnv(home=home, database_url=create_database(db, prefix), redis_url=rd, embedded=started,
                     server_url=db)
    os.environ.update(DATABASE_URL=env.database_url, REDIS_URL=env.redis_url)
    if started and not db_given:
        # our own server trusts its socket: pool workers log in as their roles, as on a laptop
        os.environ.setdefault("QUANTPIPE_DB_ROLES", "login")
    if migrate:
        from shared_models import migrate as _migrate

        _migrate.upgrade(env.database_url)
        if os.environ.get("QUANTPIPE_DB_ROLES") == "login":
            from shared_models.roles import enable_logins

            enable_logins(env.database_url)
    return env
