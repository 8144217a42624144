"""Programmatic Alembic: the CLI, tests and `quantpipe up` migrate through here."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from .db import database_url, normalize_url

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str | None = None) -> Config:
    ini = ROOT / "alembic.ini"
    cfg = Config(str(ini)) if ini.exists() else Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = normalize_url(url or database_url())
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate (as the owner); with QUANTPIPE_DB_ROLES=login (the embedded server) the pools' roles
    then get LOGIN, so each pool's workers can connect as their own role."""
    from . import roles
    from .settings import get_settings

    cfg = alembic_config(url)
    command.upgrade(cfg, revision)
    if roles.mode(get_settings()) == "login":
        roles.enable_logins(cfg.attributes["url"])


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql://x/y")).get_current_head()  # type: ignore[return-value]


def current_revision(url: str | None = None) -> str | None:
    engine = create_engine(normalize_url(url or database_url()), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
