"""The congress loader on the real files: counts, each dirty case of data/README, idempotence."""

import pytest
from sqlalchemy import text

from loaders.congress import clean, load_congress, name_key, read_congress
from tests.workers.discovery.helpers import CONGRESS, ensure_loaded

EXPECTED_READ = {"senate_transactions": 8350, "senate_filings": 143, "house": 15675}
EXPECTED_DUPLICATES = {"senate_transactions": 377, "senate_filings": 12, "house": 531}
EXPECTED_REJECTED = {("senate_transactions", "paper_filing"): 463, ("senate_transactions", "after_disclosure"): 9,
                     ("house", "after_disclosure"): 14, ("house", "impossible_date"): 4,
                     ("house", "unparseable_date"): 3, ("house", "ambiguous_type"): 1}


@pytest.fixture(scope="module")
def report(engine):
    return ensure_loaded(engine)


def test_counts_on_the_real_files(report, session):
    assert report.rows_read == EXPECTED_READ
    assert report.duplicates == EXPECTED_DUPLICATES
    assert report.rejected == EXPECTED_REJECTED
    assert report.trades_valid == sum(EXPECTED_READ.values()) - sum(EXPECTED_DUPLICATES.values()) \
        - sum(EXPECTED_REJECTED.values()) == 22754
    assert report.politicians == 224
    assert session.execute(text("SELECT count(*) FROM trades")).scalar() == 22754
    assert session.execute(text("SELECT count(*) FROM politicians")).scalar() == 224
    dead = session.execute(text("SELECT count(*) FROM dead_letters WHERE source LIKE 'load-congress:%'")).scalar()
    assert dead == sum(EXPECTED_REJECTED.values())


def test_reload_changes_nothing(report, engine, session):
    before = session.execute(text("SELECT max(updated_at), count(*) FROM politicians")).one()
    again = load_congress(engine, [CONGRESS])
    assert again.trades_inserted == 0 and again.rejected == EXPECTED_REJECTED
    assert session.execute(text("SELECT max(updated_at), count(*) FROM politicians")).one() == before
    assert session.execute(text("SELECT count(*) FROM trades")).scalar() == 22754
    assert session.execute(text("SELECT count(*) FROM dead_letters WHERE source LIKE 'load-congress:%'")).scalar() \
        == sum(EXPECTED_REJECTED.values())


def test_rejects_are_kept_with_field_and_reason(report, session):
    rows = session.execute(text("SELECT field, reason, payload FROM dead_letters "
                                "WHERE source = 'load-congress:house' AND reason LIKE 'impossible_date%'")).all()
    assert len(rows) == 4 and {r.field for r in rows} == {"transaction_date"}
    assert {r.payload["transaction_date"][:4] for r in rows} == {"0009", "0021", "0201"}


# --- each defect named in data/README.md ---------------------------------------------------------

@pytest.mark.parametrize("raw", ["0009-06-09", "0021-08-02", "0201-06-22"])
def test_impossible_years_are_rejected(raw):
    with pytest.raises(clean.FieldError) as e:
        clean.parse_date(raw, "%Y-%m-%d", "transaction_date")
    assert e.value.field == "transaction_date" and e.value.code == "impossible_date"


def test_unparseable_date_is_rejected():
    with pytest.raises(clean.FieldError) as e:
        clean.parse_date("20222-08-09", "%Y-%m-%d", "transaction_date")
    assert e.value.code == "unparseable_date"


@pytest.mark.parametrize("raw", ["", "--", "N/A"])
def test_missing_owner_is_unknown_not_rejected(raw):
    assert clean.owner(raw) is None


def test_missing_owner_rows_are_loaded(report, session):
    n = session.execute(text("SELECT count(*) FROM trades WHERE source = 'house' AND owner IS NULL")).scalar()
    assert n > 6000  # '' and '--' in thousands of House rows


@pytest.mark.parametrize("raw,expected", [
    ("$1,001 - $15,000", (1001, 15000)), ("$1,001 -", (1001, 15000)), ("$1,000,000 +", (1_000_000, None)),
    ("$50,000,000 +", (50_000_000, None)), ("Over $50,000,000", (50_000_001, None)),
    ("$1,000 - $15,000", (1000, 15000)), ("Unknown", (None, None))])
def test_amount_spellings(raw, expected):
    assert clean.parse_amount(raw) == expected


def test_exact_duplicates_are_dropped_once(report):
    assert report.duplicates["house"] == 531  # README: about 530 exact duplicate House rows


def test_spellings_of_one_person_are_one_politician(report, session):
    assert name_key("Ron Wyden") == name_key("Ronald L Wyden") == name_key("RONALD L WYDEN")
    assert name_key("Hon. James E Hon Banks") == name_key("Hon. James E. Banks")
    assert name_key("Hon. Neal Patrick MD, FACS Dunn") == name_key("Hon. Neal Patrick Dunn MD, FACS")
    wyden = session.execute(text("SELECT key, aliases FROM politicians WHERE aliases ? 'Ron Wyden'")).all()
    assert len(wyden) == 1 and wyden[0].key == "W000779"
    assert {"Ron L Wyden", "Ronald L Wyden", "Ron Wyden"} <= set(wyden[0].aliases)
    dunn = session.execute(text("SELECT count(*) FROM politicians WHERE full_name ILIKE '%Dunn%'")).scalar()
    assert dunn == 1


def test_filing_html_tickers_are_cleaned_and_non_stocks_have_none():
    assert clean.ticker('<a href="https://finance.yahoo.com/q?s=INTC" target="_blank">INTC</a>') == "INTC"
    assert clean.ticker("BRK-B") == "BRK.B" and clean.ticker("AAPl") == "AAPL"
    for raw in ("--", "N/A", "BTC-USD", "KEY$J", "SPY160219P00180000", "^RGP", "Broadcom Inc."):
        assert clean.ticker(raw) is None, raw


def test_house_options_are_typed_as_the_senate_types_them(report, session):
    """A put bought is no purchase of the stock: House rows (no asset type in the file) naming an option
    are stored as "Stock Option", a bond's call feature is not one."""
    typed = dict(session.execute(text("SELECT asset_type, count(*) FROM trades WHERE source = 'house' "
                                      "GROUP BY 1")).all())
    assert set(typed) == {None, "Stock Option"} and typed["Stock Option"] >= 100
    puts = session.execute(text("SELECT count(*) FROM trades WHERE source = 'house' AND asset_description ~* "
                                "'\\yput\\y.*@' AND asset_type IS DISTINCT FROM 'Stock Option'")).scalar()
    assert puts == 0
    for d in ("Microsoft Corporation - CALL @ $150 expiry 6/16/23", "Beyond Meat, Inc. / Call Option",
              "NVIDIA Corporation - April 19, 2021 $425 PUT Option"):
        assert clean.house_asset_type(d) == "Stock Option", d
    for d in ("NETFLIX INC SER B NOTE 4.875% 04/15/2028 CALL MAKE WHOLE", "Global X NASDAQ-100 Covered Call ETF",
              "California St GO Call 12/1/2027", "Apple Inc.", None, ""):
        assert clean.house_asset_type(d) is None, d


def test_tickers_that_no_longer_trade_are_kept(report, session):
    # Trades in delisted names stay (they have no bars; the event study simply skips them).
    n = session.execute(text("""SELECT count(*) FROM trades t WHERE t.ticker IS NOT NULL AND NOT EXISTS
                                (SELECT 1 FROM market_bars b WHERE b.symbol = t.ticker)""")).scalar()
    assert n > 10000


def test_read_is_pure_and_deterministic():
    a, b = read_congress([CONGRESS]), read_congress([CONGRESS])
    assert [t["row_hash"] for t in a.trades] == [t["row_hash"] for t in b.trades]
    assert sorted(a.identities.people) == sorted(b.identities.people)
