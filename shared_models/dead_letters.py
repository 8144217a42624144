"""The one way to keep rejected input: ``dead_letters`` rows with a capped payload.

Every pool keeps what it cannot process (the field, the reason, the input) instead of
dropping it, but a dead letter must never become the outage itself: a 2 MB garbage entry,
a payload nested 100,000 levels deep, NaN, NUL bytes or lone surrogates must all be
storable. So a dead letter keeps

- the payload itself (as JSON) when its JSON text fits in ``prefix_bytes`` (default
  ``QUANTPIPE_DEAD_LETTER_PREFIX_BYTES``), made safe for ``jsonb`` (NaN/±Infinity become
  strings, NUL becomes the text ``\\x00``);
- otherwise a JSON *string* holding the first ``prefix_bytes`` of that text, with
  ``payload_truncated`` set;
- always ``payload_bytes`` (the size of the whole input) and ``payload_sha256`` (of the
  whole input), so two copies of the same bad input can be recognised without keeping it.

``keep``/``keep_many`` write through a SQLAlchemy ``Session`` or ``Connection``, or through a
raw psycopg2 cursor or connection (the bulk loaders), inside the caller's transaction.
``prepare`` returns the row so a pool with its own SQL (ingest's erasure-aware insert) can
write it itself. A trigger in migration 0006 gives rows written any other way the same
size, hash and cap (in characters), so no path keeps a payload whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Iterable

logger = logging.getLogger(__name__)

COLUMNS = ("pool", "source", "field", "reason", "payload", "payload_bytes", "payload_sha256",
           "payload_truncated", "subject_key")
DEFAULT_PREFIX_BYTES = 4096
_TEXT_LIMITS = {"pool": 16, "source": 100, "field": 100, "reason": 2000, "subject_key": 64}
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Letter:
    """One rejected input: where it came from, which field, why, and the input itself."""

    source: str
    reason: str
    payload: Any
    field: str | None = None
    subject_key: str | None = None  # who the input is about (a keyed hash), so erasure can find it


def _clean_text(value: Any, limit: int) -> str | None:
    """A text column value: NUL-free (PostgreSQL text cannot hold it), valid UTF-8, bounded."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\x00", "\\x00")[:limit]
    return text.encode("utf-8", "replace").decode("utf-8")


def _default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "backslashreplace")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def _iterdumps(payload: Any) -> str:
    """JSON text of any structure without recursion (for payloads nested deeper than the stack)."""
    out: list[str] = []
    stack: list[Any] = [payload]
    path: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, _Close):
            out.append(item.text)
            path.discard(item.ident)
            continue
        if isinstance(item, _Raw):
            out.append(item.text)
            continue
        if isinstance(item, (tuple, set, frozenset)):
            item = list(item)
        if isinstance(item, (dict, list)):
            if id(item) in path:
                out.append('"<circular>"')
                continue
            path.add(id(item))
            pairs = list(item.items()) if isinstance(item, dict) else list(enumerate(item))
            out.append("{" if isinstance(item, dict) else "[")
            stack.append(_Close("}" if isinstance(item, dict) else "]", id(item)))
            for i in range(len(pairs) - 1, -1, -1):
                key, value = pairs[i]
                stack.append(value)
                prefix = "," if i else ""
                if isinstance(item, dict):
                    prefix += json.dumps(key if isinstance(key, str) else str(key), ensure_ascii=False) + ":"
                if prefix:
                    stack.append(_Raw(prefix))
            continue
        if item is None or isinstance(item, (bool, int, float, str)):
            out.append(json.dumps(item, ensure_ascii=False, allow_nan=True))
        else:
            out.append(json.dumps(_default(item), ensure_ascii=False))
    return "".join(out)


@dataclass(frozen=True)
class _Raw:
    text: str


@dataclass(frozen=True)
class _Close:
    text: str
    ident: int


def _whole_text(payload: Any) -> tuple[str, bool]:
    """(JSON text of the whole payload, whether it is a plain string rather than JSON)."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload).decode("utf-8", "backslashreplace"), True
    if isinstance(payload, str):
        return payload, True
    try:
        return json.dumps(payload, default=_default, ensure_ascii=False, allow_nan=True,
                          separators=(",", ":")), False
    except (RecursionError, ValueError, TypeError, OverflowError):
        try:  # too deep (or circular): the iterative encoder keeps it anyway
            return _iterdumps(payload), False
        except Exception as exc:  # noqa: BLE001 - whatever it is, it must not stop us keeping it
            return f"<unserialisable {type(payload).__name__}: {type(exc).__name__}: {exc}>", True


def _jsonb_text(text: str) -> str | None:
    """``text`` (JSON we produced) rewritten so jsonb accepts it and readers need not recurse,
    or None (keep it as a string instead): NaN/Infinity become strings, NUL escapes the text
    ``\\x00``; nesting deeper than MAX_JSON_DEPTH is refused."""
    out: list[str] = []
    depth = i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                if text[j] == "\\":
                    if text.startswith("u0000", j + 1):
                        out.append(text[i:j] + "\\\\x00")
                        i = j = j + 6
                        continue
                    j += 1
                j += 1
            out.append(text[i:j + 1])
            i = j + 1
            continue
        if ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return None
        elif ch in "]}":
            depth -= 1
        else:
            for token in ("NaN", "-Infinity", "Infinity"):
                if text.startswith(token, i):
                    out.append(json.dumps(token))
                    i += len(token)
                    break
            else:
                out.append(ch)
                i += 1
            continue
        out.append(ch)
        i += 1
    result = "".join(out)
    try:
        result.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: jsonb cannot hold them
        return None
    return result


def _prefix(text: str, limit: int) -> str:
    """The first ``limit`` bytes of ``text`` in UTF-8, cut on a character boundary, as a JSON string."""
    raw = text.encode("utf-8", "surrogatepass")[:limit]
    clean = raw.decode("utf-8", "ignore").replace("\x00", "\\x00")
    return json.dumps(clean, ensure_ascii=False).encode("utf-8", "replace").decode("utf-8")


def prepare(pool: str, source: str, reason: str, payload: Any, *, field: str | None = None,
            subject_key: str | None = None, prefix_bytes: int | None = None) -> dict[str, Any]:
    """The ``dead_letters`` row for one rejected input (``payload`` as JSON text, for ``::jsonb``)."""
    limit = prefix_bytes if prefix_bytes is not None else _configured_prefix()
    text, is_plain = _whole_text(payload)
    whole = bytes(payload) if isinstance(payload, (bytes, bytearray, memoryview)) \
        else text.encode("utf-8", "surrogatepass")
    stored = None
    if len(whole) <= limit and not is_plain:
        stored = _jsonb_text(text)
    if stored is None:  # a plain string, too big, or not storable as jsonb: keep (a prefix of) the text
        stored = _prefix(text, limit)
    return {"pool": _clean_text(pool, _TEXT_LIMITS["pool"]), "source": _clean_text(source, _TEXT_LIMITS["source"]),
            "field": _clean_text(field, _TEXT_LIMITS["field"]), "reason": _clean_text(reason, _TEXT_LIMITS["reason"]),
            "payload": stored, "payload_bytes": len(whole), "payload_sha256": hashlib.sha256(whole).hexdigest(),
            "payload_truncated": len(whole) > limit,
            "subject_key": _clean_text(subject_key, _TEXT_LIMITS["subject_key"])}


def _configured_prefix() -> int:
    try:
        from .settings import get_settings

        return get_settings().platform.dead_letter_prefix_bytes
    except Exception:  # settings unreadable must not stop us keeping bad input
        return DEFAULT_PREFIX_BYTES


_SQL = (f"INSERT INTO dead_letters ({', '.join(COLUMNS)}) VALUES "
        "(%(pool)s, %(source)s, %(field)s, %(reason)s, CAST(%(payload)s AS jsonb), %(payload_bytes)s, "
        "%(payload_sha256)s, %(payload_truncated)s, %(subject_key)s)")
_SA_SQL = _SQL.replace("%(", ":").replace(")s", "")  # the same statement with SQLAlchemy's :name binds


def _is_dbapi(target: Any) -> bool:
    """Not a SQLAlchemy Session/Connection: a DBAPI (psycopg2) cursor or connection."""
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    return not isinstance(target, (Session, Connection))


def _cursor(target: Any) -> Any:
    """A DBAPI cursor from a cursor or a connection (a pooled one included)."""
    try:
        target.execute  # noqa: B018 - cursors have it, connections do not
        return target
    except AttributeError:
        return target.cursor()


def keep_many(target: Any, pool: str, letters: Iterable[Letter], *, prefix_bytes: int | None = None) -> int:
    """Write dead letters in the caller's transaction; return how many were written.

    ``target``: a SQLAlchemy Session or Connection, or a psycopg2 cursor or connection.
    """
    rows = [prepare(pool, x.source, x.reason, x.payload, field=x.field, subject_key=x.subject_key,
                    prefix_bytes=prefix_bytes) for x in letters]
    if not rows:
        return 0
    for r in rows[:5]:
        logger.warning("dead letter %s/%s field=%s: %s (%d bytes)", r["pool"], r["source"], r["field"],
                       (r["reason"] or "")[:200], r["payload_bytes"])
    if len(rows) > 5:
        logger.warning("… and %d more dead letters from pool %s", len(rows) - 5, pool)
    if _is_dbapi(target):
        from psycopg2.extras import execute_batch

        execute_batch(_cursor(target), _SQL, rows, page_size=500)
        return len(rows)
    from sqlalchemy import text

    target.execute(text(_SA_SQL), rows)
    return len(rows)


def keep(target: Any, pool: str, source: str, reason: str, payload: Any, *, field: str | None = None,
         subject_key: str | None = None, prefix_bytes: int | None = None) -> int:
    """Keep one rejected input (see ``keep_many``)."""
    return keep_many(target, pool, [Letter(source, reason, payload, field, subject_key)], prefix_bytes=prefix_bytes)


def forget_sources(target: Any, pool: str, sources: Iterable[str]) -> int:
    """Delete a loader's earlier dead letters of ``sources`` (re-loading a file replaces them)."""
    sources = sorted(set(sources))
    if not sources:
        return 0
    if _is_dbapi(target):
        cur = _cursor(target)
        cur.execute("DELETE FROM dead_letters WHERE pool = %s AND source = ANY(%s)", (pool, sources))
        return cur.rowcount
    from sqlalchemy import bindparam, text

    stmt = text("DELETE FROM dead_letters WHERE pool = :pool AND source IN :sources").bindparams(
        bindparam("sources", expanding=True))
    return target.execute(stmt, {"pool": pool, "sources": sources}).rowcount
