"""Migration 0005 goes down to 0004 and up again; the one-champion guard comes and goes with it."""

from sqlalchemy import inspect, text

from shared_models import migrate

TABLES = {"shadow_models", "shadow_trades", "shadow_evaluations", "shadow_promotions"}


def test_0005_downgrade_and_upgrade(scratch_db):
    db, eng = scratch_db
    migrate.upgrade(db)
    assert TABLES <= set(inspect(eng).get_table_names())
    migrate.downgrade(db, "0004")
    assert not TABLES & set(inspect(eng).get_table_names())
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM pg_proc WHERE proname = 'shadow_check_one_champion'")
                         ).scalar() == 0
    migrate.upgrade(db)
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM pg_trigger WHERE tgname = 'shadow_one_champion'")
                         ).scalar() == 1
