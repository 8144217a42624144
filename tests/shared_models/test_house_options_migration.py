"""Migration 0018 types stored House options as the loader now types new ones: the same rule, checked
on every description of the shipped House file, and on stored rows through upgrade and downgrade."""

import uuid

import pandas as pd
from sqlalchemy import text

from alembic.script import ScriptDirectory

from loaders.congress import clean
from shared_models import migrate
from tests.workers.discovery.helpers import CONGRESS

SCRIPT = next(r for r in ScriptDirectory.from_config(migrate.alembic_config("postgresql://x/y")).walk_revisions()
              if r.path.endswith("_house_options.py"))
ROWS = {"h_call": "Microsoft Corporation - CALL @ $150 expiry 6/16/23",
        "h_put": "Wynn Resorts Limited - PUT 08/20/21 @ $105",
        "h_bond": "NETFLIX INC SER B NOTE 4.875% 04/15/2028 CALL MAKE WHOLE",
        "h_muni": "Mississippi ST GO BDS 2021 A B/E CPN 3% Due 06/01/40 CALL 06/01/30 @ 100.00",
        "h_stock": "Apple Inc. - Common Stock", "h_none": None}


def test_the_migrations_rule_is_the_loaders_on_every_shipped_description(engine):
    raw = pd.read_csv(CONGRESS / "house_transactions.csv.gz", usecols=["asset_description"])["asset_description"]
    descriptions = sorted({d for d in (clean.strip_html(x) for x in raw.dropna()) if d})
    module = SCRIPT.module
    with engine.connect() as c:
        typed = c.execute(text(f"SELECT asset_description FROM unnest(CAST(:d AS text[])) AS asset_description "
                               f"WHERE {module.IS_OPTION}"), {"d": descriptions}).scalars().all()
    by_loader = [d for d in descriptions if clean.house_asset_type(d) == "Stock Option"]
    assert sorted(typed) == by_loader
    assert len(by_loader) >= 100  # the shipped file's options (129 rows), not an empty rule agreeing with itself


def test_upgrade_types_stored_options_and_downgrade_untypes_them(scratch_db):
    url, eng = scratch_db
    migrate.upgrade(url, SCRIPT.down_revision)
    pid = str(uuid.uuid4())
    with eng.begin() as c:
        c.execute(text("INSERT INTO politicians (id, key, full_name, chamber) VALUES (:i, 'K1', 'Kim Example', "
                       "'house')"), {"i": pid})
        for h, d in ROWS.items():
            c.execute(text("INSERT INTO trades (politician_id, source, row_hash, ticker, asset_description, "
                           "transaction_date, type) VALUES (:i, 'house', :h, 'MSFT', :d, '2020-01-02', 'purchase')"),
                      {"i": pid, "h": h, "d": d})
        c.execute(text("INSERT INTO trades (politician_id, source, row_hash, ticker, asset_description, asset_type, "
                       "transaction_date, type) VALUES (:i, 'senate_transactions', 's_call', 'MSFT', :d, 'Stock', "
                       "'2020-01-02', 'purchase')"), {"i": pid, "d": ROWS["h_call"]})
        version = c.execute(text("SELECT version FROM table_versions WHERE table_name = 'trades'")).scalar()

    def types():
        with eng.connect() as c:
            return dict(c.execute(text("SELECT row_hash, asset_type FROM trades")).all())

    migrate.upgrade(url, SCRIPT.revision)
    assert types() == {"h_call": "Stock Option", "h_put": "Stock Option", "h_bond": None, "h_muni": None,
                       "h_stock": None, "h_none": None, "s_call": "Stock"}
    with eng.connect() as c:  # discovery's caches see the change (0017's statement triggers)
        assert c.execute(text("SELECT version FROM table_versions WHERE table_name = 'trades'")).scalar() != version
    migrate.downgrade(url, SCRIPT.down_revision)
    assert types() == {h: None for h in ROWS} | {"s_call": "Stock"}
