"""Reading a CSV file of closed trades (``quantpipe shadow record-trades``), line by line.

A file is never all-or-nothing: a line that is not valid UTF-8, has too many or
too few values, or a field too large to be one, is reported with its line
number, its column and the reason, and every other line is read. Only what
makes the whole file unusable stops it (no header, a required column missing, a
column named twice) — with a message saying so.

Columns: trade_id, opened_at, closed_at, return (required); pnl, shadow,
opportunity_id, model (optional); others are ignored. What each value must be
is the trade schema's business (``schemas.Trade``), not this reader's.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED = ("trade_id", "opened_at", "closed_at", "return")
MAX_FIELD = 1 << 20                 # a 1 MiB cell is refused per line, not for the whole file
_BAD_BYTE = re.compile("[\udc80-\udcff]")
_NEWLINE = re.compile(r"\r\n|\r|\n")


class TradeFileError(ValueError):
    """The whole file is unusable; the message names the file and what is wrong."""


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    reason: str
    raw: str                        # the line as read (undecodable bytes as \\xNN)

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "reason": self.reason, "raw": self.raw}


@dataclass
class TradeFile:
    path: Path
    columns: list[str]
    rows: list[tuple[int, dict]] = field(default_factory=list)     # (line number, row)
    errors: list[LineError] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return len(self.rows) + len(self.errors)

    def groups(self, model: str | None) -> dict[str, list[tuple[int, dict]]]:
        """Rows by model: ``model`` for all, else each row's ``model`` column (blank: an error)."""
        out: dict[str, list[tuple[int, dict]]] = {}
        for line, row in self.rows:
            name = model if model is not None else (row.get("model") or "").strip()
            if not name:
                self.errors.append(LineError(line, "model", "model: empty (give --model or fill the column)",
                                             _text(",".join(str(v) for v in row.values()))))
                continue
            out.setdefault(name, []).append((line, row))
        self.rows = [r for rows in out.values() for r in rows]
        return out


def _text(value: str) -> str:
    """Readable text of what was read: undecodable bytes shown as \\xNN."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")[:2000]


def _undecodable(name: str, value: str) -> str | None:
    """Why ``value`` (decoded with surrogateescape) is not UTF-8, or None."""
    m = _BAD_BYTE.search(value)
    if m is None:
        return None
    byte = ord(m.group()) - 0xDC00
    return (f"{name}: not valid UTF-8 (byte 0x{byte:02x} at character {m.start() + 1}); "
            "save the file as UTF-8")


def read(path: Path, *, model_column: bool = True) -> TradeFile:
    """Parse ``path``; per-line problems land in ``errors``, the rest in ``rows``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TradeFileError(f"{path}: cannot be read ({exc.strerror})") from None
    text = raw.decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    previous = csv.field_size_limit()
    csv.field_size_limit(MAX_FIELD)
    try:
        return _parse(path, text, model_column)
    finally:
        csv.field_size_limit(previous)


def _parse(path: Path, text: str, model_column: bool) -> TradeFile:
    physical = _NEWLINE.split(text)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise TradeFileError(f"{path}: empty file (expected a header line: {', '.join(REQUIRED)}, …)") from None
    except csv.Error as exc:
        raise TradeFileError(f"{path}: line 1 is not a CSV header ({exc})") from None
    columns = [c.strip() for c in header]
    bad = next((c for c in columns if _undecodable("header", c)), None)
    if bad is not None:
        raise TradeFileError(f"{path}: line 1: {_undecodable('header', bad)}")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise TradeFileError(f"{path}: missing column(s) {', '.join(missing)} "
                             f"(found: {', '.join(columns) or 'none'})")
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise TradeFileError(f"{path}: column(s) named twice: {', '.join(twice)}")
    out = TradeFile(path, columns)
    end = reader.line_num
    while True:
        start = end + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            end = reader.line_num
            out.errors.append(LineError(start, "row", f"row: {exc}", _text(_lines(physical, start, end))))
            continue
        end = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue                                          # blank line
        raw = _lines(physical, start, end)
        if len(values) != len(columns):
            hint = " (an unclosed quote?)" if end > start else ""
            plural = "" if len(values) == 1 else "s"
            out.errors.append(LineError(start, "row", f"row: {len(values)} value{plural} for {len(columns)} "
                                                      f"columns{hint}", _text(raw)))
            continue
        bad = next(((c, w) for c, v in zip(columns, values) if (w := _undecodable(c, v))), None)
        if bad is not None:
            out.errors.append(LineError(start, bad[0], bad[1], _text(raw)))
            continue
        row = dict(zip(columns, values))
        if not model_column:
            row.pop("model", None)
        out.rows.append((start, row))
    return out


def _lines(physical: list[str], start: int, end: int) -> str:
    return "\n".join(physical[start - 1:end])
