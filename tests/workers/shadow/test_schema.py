"""Migration 0005 goes down to 0004 and up again; the one-champion guard comes and goes with it."""

import uuid

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from shared_models import migrate

TABLES = {"shadow_models", "shadow_trades", "shadow_evaluations", "shadow_promotions"}


def test_0005_downgrade_and_upgrade(database_url):
    url = make_url(database_url)
    name = f"qp_shadow_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    db = url.set(database=name).render_as_string(hide_password=False)
    eng = create_engine(db)
    try:
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
    finally:
        eng.dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
