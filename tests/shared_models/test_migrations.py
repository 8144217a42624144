"""The schema changes only through Alembic, and every migration goes down as well as up."""

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from shared_models import migrate
from shared_models.models import Base
from shared_models.scratch import create_database, drop_database


def test_round_trip_upgrade_downgrade_upgrade(database_url):
    url = create_database(database_url, "qp_mig")
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
        drop_database(url, make_url(database_url).database)


def test_models_match_migrations(engine):
    """Every column a model declares exists in the migrated database."""
    insp = inspect(engine)
    for name, table in Base.metadata.tables.items():
        cols = {c["name"] for c in insp.get_columns(name)}
        assert {c.name for c in table.columns} <= cols, (name, {c.name for c in table.columns} - cols)
