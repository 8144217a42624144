"""Raw rows of the three disclosure files, each with where it came from, and the row schema.

A file is refused as a whole (``CongressFileError`` naming the file and the cause) only when
it cannot be read at all: not gzip, truncated, JSON that does not parse, no header. Anything
wrong with one row is that row's problem: ``check`` names the field and the reason, and the
loader dead-letters the row and goes on.

- JSON files are decoded with ``surrogateescape``, so a non-UTF-8 byte inside one string
  makes that row (not the file) bad.
- The House CSV is read one line per record (the files have no multi-line fields), with
  ``csv`` in strict mode: an unterminated quote, a stray carriage return or a wrong number
  of fields is a bad line, never a file that swallows the rows after it.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Iterable

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, field_validator

from .clean import FieldError


class CongressFileError(ValueError):
    """A path holds none of the known disclosure files, or a file cannot be read at all."""


@dataclass(frozen=True)
class RawRow:
    source: str
    where: str  # "row 12" (JSON element), "line 7" (CSV), "filing 3, transaction 2"
    raw: Any  # as parsed: any JSON value for a bad JSON row, the line for a bad CSV record
    problem: FieldError | None = None  # found while reading: a CSV line that is no record, a bad filing


MAX_TEXT = 4096  # the longest field in the shipped files has 442 characters

# Bounded by the columns they end up in: names -> politicians.key (120) / full_name (200).
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT, strict=True)]
Short = Annotated[str, StringConstraints(max_length=64, strict=True)]
Name = Annotated[str, StringConstraints(max_length=100, strict=True)]
HalfName = Annotated[str, StringConstraints(max_length=50, strict=True)]
Code = Annotated[str, StringConstraints(max_length=16, strict=True)]
District = Annotated[str, StringConstraints(max_length=8, strict=True)]


class _Row(BaseModel):
    """Known fields are text or null; unknown fields are kept in the raw row, not used."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("contains a NUL character")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("is not valid UTF-8") from None
        return value


class _Trade(_Row):
    transaction_date: Text | None = None
    owner: Short | None = None
    ticker: Text | None = None
    asset_description: Text | None = None
    asset_type: Short | None = None
    type: Short | None = None
    amount: Short | None = None
    comment: Text | None = None
    ptr_link: Text | None = None


class SenateRow(_Trade):
    senator: Name | None = None


class HouseRow(_Trade):
    disclosure_year: Short | None = None
    disclosure_date: Text | None = None
    representative: Name | None = None
    district: District | None = None
    cap_gains_over_200_usd: Short | None = None


class Filing(_Row):
    first_name: HalfName | None = None
    last_name: HalfName | None = None
    office: Text | None = None
    ptr_link: Text | None = None
    date_recieved: Text | None = None
    bioguide: Code | None = None
    transactions: list[Any] | None = None


SCHEMAS = {"senate_transactions": SenateRow, "senate_filings": SenateRow, "house": HouseRow}


def check(schema: type[_Row], raw: Any) -> None:
    """Raise ``FieldError`` naming the first bad field of ``raw`` (an object is expected)."""
    if not isinstance(raw, dict):
        raise FieldError("row", "not_an_object", f"expected an object, got {type(raw).__name__}")
    try:
        schema.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "row"
        code = {"string_type": "not_text", "string_too_long": "too_long", "list_type": "not_a_list",
                "string_unicode": "not_utf8", "value_error": "unstorable"}.get(err["type"], err["type"])
        detail = "is not valid UTF-8" if code == "not_utf8" else err["msg"].removeprefix("Value error, ")
        raise FieldError(field, code, detail) from None


def _read_bytes(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise CongressFileError(f"{path}: cannot read it as gzip ({exc})") from None


def read_json_array(path: Path) -> list:
    """A JSON array file; bad bytes survive as lone surrogates (found per row by ``check``)."""
    text = _read_bytes(path).decode("utf-8", "surrogateescape")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CongressFileError(f"{path}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise CongressFileError(f"{path}: not JSON this loader can read: nested too deeply") from None
    if not isinstance(value, list):
        raise CongressFileError(f"{path}: expected a JSON array of rows, got {type(value).__name__}")
    return value


def house_rows(path: Path) -> Iterable[RawRow]:
    """Each non-empty line after the header: a dict by column name, or the line itself with the
    ``problem`` when it is no well-formed record."""
    lines = _read_bytes(path).decode("utf-8", "surrogateescape").split("\n")
    try:
        header = next(csv.reader([lines[0].removesuffix("\r")], strict=True))
    except (csv.Error, StopIteration) as exc:
        raise CongressFileError(f"{path}: unreadable header line ({exc})") from None
    missing = {"transaction_date", "disclosure_date", "representative", "type", "amount"} - set(header)
    if missing or len(set(header)) != len(header):
        raise CongressFileError(f"{path}: header must name each column once and include {sorted(missing)}")
    for number, line in enumerate(lines[1:], start=2):
        line = line.removesuffix("\r")
        if not line:
            continue
        where = f"line {number}"
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error as exc:
            yield RawRow("house", where, line, FieldError("line", "bad_record", f"not a CSV record: {exc}"))
            continue
        if len(fields) != len(header):
            yield RawRow("house", where, line, FieldError("line", "bad_record",
                                                          f"expected {len(header)} fields, got {len(fields)}"))
            continue
        yield RawRow("house", where, dict(zip(header, fields)))


def check_row(row: RawRow) -> None:
    """Raise ``FieldError`` when ``row`` is no record or a field of it is unusable."""
    if row.problem is not None:
        raise row.problem
    check(SCHEMAS[row.source], row.raw)
