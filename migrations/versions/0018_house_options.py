"""House trades of options are typed "Stock Option", as the Senate files type them

The House files carry no asset type, so an option on a ticker ("Microsoft Corporation - CALL @ $150
expiry 6/16/23", "Wynn Resorts Limited - PUT 08/20/21 @ $105") was stored as a plain trade of the
stock, and discovery's event study took a put bought as a purchase of the shares. The loader now
types such rows (``loaders.congress.clean.house_asset_type``); this migration types the rows already
stored by the same rule. PostgreSQL's regular expressions spell a word boundary ``\\y`` (its ``\\b``
is a backspace); ``tests/shared_models/test_house_options_migration.py`` checks that this rule and
the loader's agree on every description of the shipped House file. The UPDATE fires ``trades``'
statement triggers (0017), so discovery's caches see the change.

Revision ID: 0018
Revises: 0017
"""
from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

OPTION = (r"\yoptions?\y|\y(call|put)s?\y.*(strike|expir|exercis|excercis|@|\$)"
          r"|(strike|expir|@|\$).*\y(call|put)s?\y")
NOT_OPTION = r"\ynotes?\y|\ymtn\y|make whole|\ybonds?\y|\ybds\y|\yfund\y|\yetf\y|\ygo\y"
# ``~*``: case-insensitive, as the loader's re.IGNORECASE
IS_OPTION = f"(asset_description ~* '{OPTION}' AND asset_description !~* '{NOT_OPTION}')"


def upgrade() -> None:
    op.execute(f"UPDATE trades SET asset_type = 'Stock Option' "
               f"WHERE source = 'house' AND asset_type IS NULL AND {IS_OPTION}")


def downgrade() -> None:
    op.execute("UPDATE trades SET asset_type = NULL WHERE source = 'house' AND asset_type = 'Stock Option'")
