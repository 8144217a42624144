"""The schema changes only through Alembic, and every migration goes down as well as up."""

import uuid

from sqlalchemy import create_engine, inspect, text

from shared_models import migrate
from shared_models.models import Base


def _fresh_db(admin_url: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    name = f"qp_mig_{uuid.uuid4().hex[:8]}"
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def test_round_trip_upgrade_downgrade_upgrade(database_url):
    url = _fresh_db(database_url)
    eng = create_engine(url)
    try:
        migrate.upgrade(url)
        assert migrate.current_revision(url) == migrate.head_revision()
        tables = set(inspect(eng).get_table_names())
        assert set(Base.metadata.tables) <= tables, set(Base.metadata.tables) - tables
        migrate.downgrade(url, "base")
        assert migrate.current_revision(url) is None
        assert set(inspect(eng).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(url)
        assert migrate.current_revision(url) == migrate.head_revision()
    finally:
        eng.dispose()
        admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{eng.url.database}" WITH (FORCE)'))
        admin.dispose()


def test_models_match_migrations(engine):
    """Every column a model declares exists in the migrated database."""
    insp = inspect(engine)
    for name, table in Base.metadata.tables.items():
        cols = {c["name"] for c in insp.get_columns(name)}
        assert {c.name for c in table.columns} <= cols, (name, {c.name for c in table.columns} - cols)
