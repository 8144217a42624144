"""Field cleaners for disclosure rows. Each returns a clean value or raises ``FieldError``
naming the field, so a rejected row is reported with the exact reason."""

from __future__ import annotations

import html
import re
from datetime import date, datetime

# The STOCK Act reporting brackets; a truncated "$1,001 -" means the bracket starting there.
BRACKETS = {1_000: 15_000, 1_001: 15_000, 15_000: 50_000, 15_001: 50_000, 50_001: 100_000, 100_001: 250_000,
            250_001: 500_000, 500_001: 1_000_000, 1_000_001: 5_000_000, 5_000_001: 25_000_000,
            25_000_001: 50_000_000}
TRADE_TYPES = {"purchase": "purchase", "sale (full)": "sale_full", "sale_full": "sale_full",
               "sale (partial)": "sale_partial", "sale_partial": "sale_partial", "exchange": "exchange"}
OWNERS = {"self": "self", "spouse": "spouse", "joint": "joint", "child": "dependent", "dependent": "dependent"}
UNKNOWN_OWNER = {"", "--", "n/a"}
EARLIEST_YEAR = 2000  # disclosures here start in 2012; anything before 2000 is a typo (0009, 0021, 0201)
_TICKER = re.compile(r"[A-Z]{1,5}(?:\.[A-Z]{1,2})?")
_CLASS_SHARE = re.compile(r"([A-Z]{1,5})[- ]([A-Z])")
NO_TICKER = {"", "--", "N/A", "NA", "NONE"}
_ANCHOR_TEXT = re.compile(r">\s*([^<>]+?)\s*</a>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_MONEY = re.compile(r"\$?\s*([\d,]+)")
# House rows carry no asset type, and ~130 of them are options on a ticker ("MSFT - CALL @ $150 expiry
# 6/16/23", "Wynn Resorts - PUT 08/20/21 @ $105"): an event study must not take a put as a purchase of
# the stock. A bond's call feature ("NOTE CALL MAKE WHOLE", "GO BDS ... CALL 06/01/30 @ 100") is not one.
# Migration 0018 classifies stored rows by the same rule (its test checks the two agree).
OPTION = re.compile(r"\boptions?\b|\b(?:call|put)s?\b.*(?:strike|expir|exercis|excercis|@|\$)"
                    r"|(?:strike|expir|@|\$).*\b(?:call|put)s?\b", re.IGNORECASE)
NOT_OPTION = re.compile(r"\bnotes?\b|\bmtn\b|make whole|\bbonds?\b|\bbds\b|\bfund\b|\betf\b|\bgo\b",
                        re.IGNORECASE)


class FieldError(ValueError):
    def __init__(self, field: str, code: str, detail: str):
        super().__init__(f"{field}: {detail}")
        self.field, self.code, self.detail = field, code, detail


def parse_date(raw: str, fmt: str, field: str) -> date:
    """A date in ``fmt``; impossible years (before 2000) are errors, not data."""
    text = (raw or "").strip()
    try:
        value = datetime.strptime(text, fmt).date()
    except ValueError:
        raise FieldError(field, "unparseable_date", f"cannot parse {text[:40]!r} as {fmt}") from None
    if value.year < EARLIEST_YEAR:
        raise FieldError(field, "impossible_date", f"impossible year {value.year} in {text!r}")
    if value > date.today():
        raise FieldError(field, "future_date", f"{value} is in the future")
    return value


def parse_amount(raw: str) -> tuple[float | None, float | None]:
    """``$1,001 - $15,000`` -> (1001, 15000); ``$1,001 -`` -> its bracket; ``$1,000,000 +`` /
    ``Over $50,000,000`` -> (min, None); ``Unknown`` -> (None, None)."""
    text = (raw or "").strip()
    if text.lower() in {"unknown", ""}:
        return None, None
    numbers = [float(m.replace(",", "")) for m in _MONEY.findall(text) if m.strip(",")]
    if text.lower().startswith("over") and len(numbers) == 1:
        return numbers[0] + 1, None
    if text.endswith("+") and len(numbers) == 1:
        return numbers[0], None
    if text.endswith("-") and len(numbers) == 1:
        low = numbers[0]
        if low not in BRACKETS:
            raise FieldError("amount", "unparseable_amount", f"truncated range {text!r} is no known bracket")
        return low, float(BRACKETS[int(low)])
    if len(numbers) == 2 and numbers[0] <= numbers[1]:
        return numbers[0], numbers[1]
    raise FieldError("amount", "unparseable_amount", f"cannot parse amount {text!r}")


def trade_type(raw: str) -> str:
    text = (raw or "").strip().lower()
    if text in TRADE_TYPES:
        return TRADE_TYPES[text]
    if text == "sale":
        raise FieldError("type", "ambiguous_type", "'sale' says neither full nor partial")
    raise FieldError("type", "unknown_type", f"unknown transaction type {raw!r}")


def owner(raw: str) -> str | None:
    text = (raw or "").strip().lower()
    if text in UNKNOWN_OWNER:
        return None  # thousands of House rows leave it blank: unknown, not an error
    if text in OWNERS:
        return OWNERS[text]
    raise FieldError("owner", "unknown_owner", f"unknown owner {raw!r}")


def house_asset_type(description: str | None) -> str | None:
    """"Stock Option" (the Senate's name for it) when a House row's description names an option, else
    unknown (None), as the House files leave it."""
    if description and OPTION.search(description) and not NOT_OPTION.search(description):
        return "Stock Option"
    return None


def strip_html(raw: str | None) -> str | None:
    """Filing rows wrap values in HTML (links, <br>, <div>): keep the text."""
    if raw is None:
        return None
    text = " ".join(html.unescape(_TAG.sub(" ", raw)).split())
    return text or None


def ticker(raw: str | None) -> str | None:
    """A listed equity symbol (``BRK-B`` -> ``BRK.B``), or None for no ticker and for non-stock
    symbols: crypto pairs (``BTC-USD``), preferreds (``KEY$J``), options, indices, company names."""
    text = raw or ""
    anchors = _ANCHOR_TEXT.findall(text)
    text = anchors[0] if anchors else (strip_html(text) or "")
    text = text.strip().upper()
    if text in NO_TICKER:
        return None
    text = _CLASS_SHARE.sub(r"\1.\2", text) if _CLASS_SHARE.fullmatch(text) else text
    return text if _TICKER.fullmatch(text) else None
