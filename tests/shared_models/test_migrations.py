"""The schema changes only through Alembic, and every migration goes down as well as up."""

from sqlalchemy import inspect

from shared_models import migrate
from shared_models.models import Base


def test_round_trip_upgrade_downgrade_upgrade(scratch_db):
    url, eng = scratch_db
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    tables = set(inspect(eng).get_table_names())
    assert set(Base.metadata.tables) <= tables, set(Base.metadata.tables) - tables
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    assert set(inspect(eng).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()


def test_models_match_migrations(engine):
    """Every column a model declares exists in the migrated database."""
    insp = inspect(engine)
    for name, table in Base.metadata.tables.items():
        cols = {c["name"] for c in insp.get_columns(name)}
        assert {c.name for c in table.columns} <= cols, (name, {c.name for c in table.columns} - cols)
