"""From stream entries to committed rows: no batch is ever hostage to one entry.

``split`` checks every entry on its own: whatever goes wrong with one (bad JSON, a field
that fails validation, nesting that would blow the stack, any exception at all) makes it a
``Reject`` with the reason; the others go on. ``write_batch`` writes the valid events and
the dead letters in one transaction. If PostgreSQL (or anything else) refuses the batch for
a reason that is not a passing outage, it bisects: halves are written on their own until
the entries that cannot be written are alone, and those are dead-lettered. A transient
error (connection lost, server restarting) is raised instead, so the entries stay pending
and are retried: an outage never dead-letters good events.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from sqlalchemy import Engine

from . import codec, redact, store
from . import events as ev

log = logging.getLogger(__name__)

ENTRY_OVERHEAD_BYTES = 2048  # an entry's fields other than metadata, JSON-encoded, fit easily in this


@dataclass
class Reject:
    """An input that will be kept as a dead letter: what to keep, which field, why, and whom it is about."""

    payload: Any
    field: str | None
    reason: str
    user_id: Any = None
    ts: Any = None


@dataclass
class Outcome:
    inserted: int = 0
    users: set[int] = field(default_factory=set)
    dead_lettered: int = 0
    conflicts: int = 0


def is_transient(exc: BaseException) -> bool:
    """A passing outage (retry later) rather than something wrong with the data (workers.base decides,
    for every pool alike: SQLSTATE, a lost connection, Redis and broker errors)."""
    from workers.base import is_transient as classify

    return classify(exc)


class _Canary:
    """Whether the database takes a plain event at all: a synthetic one written through the same
    statement and rolled back, asked once per batch, only when an event fails on its own. If even
    the canary is refused (a missing privilege, a full disk, a broken trigger) the fault is not the
    event's: nothing is dead-lettered, the error is raised and the entries wait in the stream."""

    def __init__(self, engine: Engine, half_life: float):
        self.engine, self.half_life, self.verdict = engine, half_life, None

    def healthy(self) -> bool:
        if self.verdict is None:
            canary = {"event_id": str(ev.uuid7()), "user_id": "qp-canary", "entity_id": "QP.CANARY",
                      "action": "view", "weight": 1.0, "ts": time.time(), "metadata": {}, "metadata_json": "{}"}
            with self.engine.connect() as conn:
                tx = conn.begin()
                try:
                    store.write_events(conn, [canary], self.half_life)
                    self.verdict = True
                except Exception as exc:  # noqa: BLE001 - classified
                    if is_transient(exc):
                        raise
                    self.verdict = False
                finally:
                    tx.rollback()
        return self.verdict


def _raw_text(fields: Any, max_bytes: int) -> tuple[str, bool]:
    """(the entry's JSON text, whether it is a pack: field 'b', a JSON array of events)."""
    if not isinstance(fields, dict):
        raise ev.EventValidationError("event", f"stream entry is not a field map ({type(fields).__name__})")
    raw = fields.get(b"e", fields.get("e"))
    packed = False
    if raw is None:
        raw = fields.get(b"b", fields.get("b"))
        packed, max_bytes = True, max(max_bytes, stream_pack_bytes())
    if raw is None:
        names = sorted(k.decode(errors="replace") if isinstance(k, bytes) else str(k) for k in fields)[:10]
        raise ev.EventValidationError("event", f"stream entry has no 'e' field (fields: {names})")
    if len(raw) > max_bytes:
        raise ev.EventValidationError("event", f"stream entry of {len(raw)} bytes exceeds the bound of {max_bytes}")
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8"), packed
        except UnicodeDecodeError as exc:
            raise ev.EventValidationError("event", f"not valid UTF-8: {exc}") from None
    return str(raw), packed


def stream_pack_bytes() -> int:
    from .stream import PACK_BYTES

    return PACK_BYTES


def _entry_text(fields: Any) -> str:
    """The whole entry as text, whatever it holds (for a dead letter)."""
    if not isinstance(fields, dict):
        return repr(fields)[:100_000]
    parts = []
    for k, v in fields.items():
        k = k.decode("utf-8", "backslashreplace") if isinstance(k, bytes) else str(k)
        v = v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else str(v)
        parts.append(v if k == "e" and len(fields) == 1 else f"{k}={v}")
    return "\n".join(parts)


_USER_HINT = re.compile(r'"user_id"\s*:\s*(?:(\d{1,19})\b|"([^"\\]{1,64})")')


def _user_hint(text: str | None) -> Any:
    """The user an undecodable entry is about, read from its text, so erasure still finds its dead letter."""
    m = _USER_HINT.search(text[:100_000]) if text else None
    if m is None:
        return None
    return int(m.group(1)) if m.group(1) else m.group(2)


def keepable(raw: Any, text: str, hash_ip: Callable[[str], str]) -> Any:
    """What a dead letter keeps: the decoded object with every IP redacted when that is safe to walk,
    else the entry's text with every IP redacted (never a raw address, never a deep structure)."""
    if isinstance(raw, dict):
        try:
            return ev.scrub(raw, hash_ip)
        except Exception:  # noqa: BLE001 - too deep or odd: keep the text instead
            pass
    return redact.redact_text(text, hash_ip)


class Part:
    """Entries checked one by one (``add``): the valid events (an identical resend within the part kept
    once), the rejects, and how many events the entries held."""

    def __init__(self, max_metadata_bytes: int, hash_ip: Callable[[str], str]):
        self.max_metadata_bytes, self.hash_ip = max_metadata_bytes, hash_ip
        self.max_bytes = max_metadata_bytes + ENTRY_OVERHEAD_BYTES
        self.valid: list[dict] = []
        self.rejects: list[Reject] = []
        self.seen: dict[str, dict] = {}
        self.dups = 0
        self.events = 0

    def add(self, fields: Any) -> None:
        """One stream entry: an event, or a pack of events each checked on its own."""
        raw: Any = None
        text: str | None = None
        try:
            text, packed = _raw_text(fields, self.max_bytes)
            try:
                raw = codec.loads(text)
            except ValueError as exc:
                raise ev.EventValidationError("event", f"not valid JSON: {exc}") from None
            if packed:
                if type(raw) is not list or not raw:
                    raise ev.EventValidationError("event", "a pack entry ('b') must be a non-empty JSON array "
                                                           f"of events, got {type(raw).__name__}")
                for item in raw:
                    self._one(item, None)
                return
        except Exception as exc:  # noqa: BLE001 - whatever it is, this entry must not stop the others
            self.events += 1
            self._reject(exc, raw, text if text is not None else _entry_text(fields))
            return
        self._one(raw, text)

    def _one(self, raw: Any, text: str | None) -> None:
        self.events += 1
        try:
            event = ev.revalidate(raw, max_metadata_bytes=self.max_metadata_bytes, hash_ip=self.hash_ip)
        except Exception as exc:  # noqa: BLE001 - whatever it is, this event must not stop the others
            self._reject(exc, raw, text if text is not None else _item_text(raw))
            return
        first = self.seen.get(event["event_id"])
        if first is None:
            self.seen[event["event_id"]] = event
            self.valid.append(event)
        elif _same(first, event):
            self.dups += 1
        else:
            self.rejects.append(conflict_reject(event, _differences(first, event)))

    def _reject(self, exc: BaseException, raw: Any, text: str) -> None:
        if isinstance(exc, ev.EventValidationError):
            name, reason = exc.field, exc.reason
        else:
            name, reason = "event", f"cannot be processed: {type(exc).__name__}: {str(exc)[:300]}"
        payload = keepable(raw, text, self.hash_ip)
        user = raw.get("user_id") if isinstance(raw, dict) else _user_hint(text)
        self.rejects.append(Reject(payload, name, reason, user, raw.get("ts") if isinstance(raw, dict) else None))


def _item_text(item: Any) -> str:
    """A pack's element as text, for its dead letter."""
    for show in (lambda: json.dumps(item, default=str), lambda: repr(item)[:100_000]):
        try:
            return show()
        except Exception:  # noqa: BLE001 - too deep to encode: say what it is
            pass
    return f"<{type(item).__name__} too deeply nested to show>"


def split(entries: list, *, max_metadata_bytes: int, hash_ip: Callable[[str], str]
          ) -> tuple[list[dict], list[Reject], int]:
    """(valid events, rejects, identical resends within the batch) of a list of stream entries."""
    part = Part(max_metadata_bytes, hash_ip)
    for _entry_id, fields in entries:
        part.add(fields)
    return part.valid, part.rejects, part.dups


def parts(entries: list, batch_size: int, *, max_metadata_bytes: int, hash_ip: Callable[[str], str]
          ) -> Iterator[tuple[list, Part]]:
    """(entry ids, Part) of consecutive entries holding about batch_size events each (an entry is never
    split), checked lazily: a read of packs larger than a batch is written as several batches."""
    ids: list = []
    part = Part(max_metadata_bytes, hash_ip)
    for entry_id, fields in entries:
        part.add(fields)
        ids.append(entry_id)
        if part.events >= batch_size:
            yield ids, part
            ids, part = [], Part(max_metadata_bytes, hash_ip)
    if ids:
        yield ids, part


_COMPARED = ("user_id", "entity_id", "action", "weight", "ts", "metadata")


def _same(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in _COMPARED)


def _differences(a: dict, b: dict) -> list[str]:
    return [k for k in _COMPARED if a[k] != b[k]]


def conflict_reject(event: dict, fields: list[str]) -> Reject:
    payload = {k: v for k, v in event.items() if k != "metadata_json"}
    return Reject(payload, "event_id",
                  f"event_id {event['event_id']} was already used for an event with other content "
                  f"(differs in: {', '.join(fields) or 'content'}); not stored",
                  event["user_id"], event["ts"])


def _write(engine: Engine, events: list[dict], rejects: list[Reject], half_life: float,
           source: str) -> Outcome:
    with engine.begin() as conn:
        inserted, users, clashes = store.write_events(conn, events, half_life)
        by_id = {e["event_id"]: e for e in events} if clashes else {}
        rejects = rejects + [conflict_reject(by_id[eid], names) for eid, names in clashes]
        dead = store.dead_letter(conn, rejects, source)
    return Outcome(inserted, set(users), dead, len(clashes))


def _isolate(engine: Engine, events: list[dict], half_life: float, source: str,
             canary: _Canary) -> tuple[Outcome, list[Reject]]:
    """Write what can be written by halves; the events that fail alone come back as rejects."""
    try:
        return _write(engine, events, [], half_life, source), []
    except Exception as exc:  # noqa: BLE001 - classified below
        if is_transient(exc):
            raise
        if len(events) == 1:
            if not canary.healthy():
                raise
            orig = getattr(exc, "orig", None) or exc
            e = events[0]
            return Outcome(), [Reject({k: v for k, v in e.items() if k != "metadata_json"}, "event",
                                      f"refused by PostgreSQL: {type(orig).__name__}: {str(orig)[:500]}",
                                      e["user_id"], e["ts"])]
    mid = len(events) // 2
    total, bad = Outcome(), []
    for half in (events[:mid], events[mid:]):
        out, rej = _isolate(engine, half, half_life, source, canary)
        total.inserted += out.inserted
        total.users |= out.users
        total.dead_lettered += out.dead_lettered
        total.conflicts += out.conflicts
        bad += rej
    return total, bad


def write_batch(engine: Engine, valid: list[dict], rejects: list[Reject], half_life_seconds: float,
                source: str = "ingest.drain") -> Outcome:
    """Write a batch and its dead letters in one transaction; isolate what cannot be written."""
    canary = _Canary(engine, half_life_seconds)
    try:
        return _write(engine, valid, rejects, half_life_seconds, source)
    except Exception as exc:  # noqa: BLE001 - classified below
        if is_transient(exc) or (valid and not canary.healthy()):
            raise  # an outage, or the database refuses any event: the entries wait in the stream
        log.warning("batch of %d events + %d rejects refused (%s: %s); isolating the culprits",
                    len(valid), len(rejects), type(exc).__name__, str(exc)[:200])
    out, bad = _isolate(engine, valid, half_life_seconds, source, canary) if valid else (Outcome(), [])
    out.dead_lettered += store.keep_dead_letters(engine, rejects + bad, source)
    return out
