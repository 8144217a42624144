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


def schema_drift(connection) -> list:
    """Alembic's autogenerate diff between the models and the migrated schema: tables, columns,
    types, nullability, server defaults, indexes, unique constraints and foreign keys.
    (CHECK constraints, triggers and views are not compared by Alembic; migrations own them.)"""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    ctx = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
    return compare_metadata(ctx, Base.metadata)


def test_models_match_migrations(engine):
    """Models are the source of truth: `alembic revision --autogenerate` at head would write nothing."""
    with engine.connect() as conn:
        drift = schema_drift(conn)
    assert drift == [], "models and migrations differ:\n" + "\n".join(map(repr, drift))


def test_drift_is_detected(engine):
    """The comparison sees a changed type, nullability and a missing index (the test above can fail)."""
    from sqlalchemy import Index, Integer

    table = Base.metadata.tables["market_bars"]
    column, index = table.c.volume, Index("ix_drift_probe", table.c.close)
    saved = column.type, column.nullable
    column.type, column.nullable = Integer(), True
    try:
        with engine.connect() as conn:
            diffs = schema_drift(conn)
        kinds = {step[0] for d in diffs for step in (d if isinstance(d, list) else [d])}
    finally:
        column.type, column.nullable = saved
        table.indexes.discard(index)
    assert {"modify_type", "modify_nullable", "add_index"} <= kinds, kinds
