"""Event validation and the action registry.

The same validator runs in ``track()`` (the caller gets the error at once) and in
the ingest worker (events written to the stream by anything else are checked
again and dead-lettered with the reason), so the two can never disagree.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

from . import redact

# Default weights: a trade says much more about interest than a page view. Negative
# weights (watchlist_remove) lower the interest.
DEFAULT_ACTIONS: dict[str, float] = {
    "view": 1.0,
    "search": 2.0,
    "analyze": 3.0,
    "alert": 4.0,
    "watchlist_add": 5.0,
    "watchlist_remove": -3.0,
    "trade": 10.0,
}
ACTIONS: dict[str, float] = dict(DEFAULT_ACTIONS)
MAX_ABS_WEIGHT = 1000.0
# The seed's form: action="watchlist" with metadata {"action": "add" | "remove"} (no metadata: add).
SEED_FORMS: dict[str, dict[str | None, str]] = {
    "watchlist": {"add": "watchlist_add", "remove": "watchlist_remove", None: "watchlist_add"},
}

ACTION_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
ENTITY_RE = re.compile(r"^[A-Z0-9][A-Z0-9._:/^=\-]{0,31}$")
MAX_USER_ID = 2**63 - 1
FUTURE_SKEW_SECONDS = 300.0
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False)  # reused: no per-call setup
# the JSON escape of a NUL character: \u0000 after an even number of backslashes (an odd number
# means the backslash itself was escaped, i.e. the text "\u0000" — allowed)
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
MAX_METADATA_DEPTH = 16  # nesting of objects/arrays; deeper is refused at track() and dead-lettered by the drain


class EventValidationError(ValueError):
    """An event is invalid; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def register_action(name: str, weight: float) -> None:
    """Add (or re-weight) an action. Workers accept it because the weight travels with the event."""
    if not isinstance(name, str) or not ACTION_RE.match(name):
        raise EventValidationError("action", f"name must match {ACTION_RE.pattern}")
    _check_weight(weight)
    ACTIONS[name] = float(weight)


def _check_weight(weight: Any) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise EventValidationError("weight", f"must be a finite number, got {weight!r}")
    if abs(weight) > MAX_ABS_WEIGHT:
        raise EventValidationError("weight", f"|weight| must be <= {MAX_ABS_WEIGHT}")
    return float(weight)


MAX_USER_ID_CHARS = 64
USER_ID_RE = re.compile(r"^[A-Za-z0-9_.:@|+\-]{1,64}$")  # ints, UUIDs, ULIDs, auth0|..., emails, user_2Nx...
_UUID_ANY_CASE = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


def check_user_id(user_id: Any) -> str:
    """The app's user id in its stored (text) form: a positive 64-bit integer as its decimal digits
    (42 and "42" are one user), a UUID in canonical lower case, any other id of 1-64 characters
    of A-Z a-z 0-9 _ . : @ | + - as given (case matters: Firebase-style ids are case-sensitive)."""
    if type(user_id) is int:  # the common case first: no regex
        if 0 < user_id <= MAX_USER_ID:
            return str(user_id)
        raise EventValidationError("user_id", "an integer id must be a positive 64-bit integer")
    if isinstance(user_id, str):
        if USER_ID_RE.match(user_id):
            return user_id.lower() if len(user_id) == 36 and _UUID_ANY_CASE.match(user_id) else user_id
        raise EventValidationError("user_id", f"{user_id[:40]!r} is not a user id (1-{MAX_USER_ID_CHARS} of "
                                              "A-Z a-z 0-9 _ . : @ | + -)")
    if isinstance(user_id, uuid.UUID):
        return str(user_id)
    if isinstance(user_id, numbers.Integral) and not isinstance(user_id, bool):  # int subclasses, numpy ints
        return check_user_id(int(user_id))
    raise EventValidationError("user_id", f"must be an integer, a string or a UUID, got {type(user_id).__name__}")


def check_entity_id(entity_id: Any) -> str:
    if not isinstance(entity_id, str):
        raise EventValidationError("entity_id", f"must be a string, got {type(entity_id).__name__}")
    if not entity_id.isascii():  # str.upper() would map 'ſPY' onto SPY, 'ıbm' onto IBM, 'ﬃ' onto FFI
        raise EventValidationError("entity_id", f"{entity_id[:40]!r} has non-ASCII characters")
    norm = entity_id.strip().upper()
    if not ENTITY_RE.match(norm):
        raise EventValidationError("entity_id", f"{entity_id[:40]!r} is not a ticker-like id "
                                                "(1-32 of A-Z 0-9 . _ : / ^ = -)")
    if redact.might_hold_ip(norm) and redact.holds_ip(norm):
        raise EventValidationError("entity_id", "looks like an IP address (raw addresses are never stored)")
    return norm


def scrub(value: Any, hash_ip, depth: int = 0) -> Any:
    """Replace IP addresses anywhere in metadata (values, keys, inside text) by their keyed hash,
    refusing nesting deeper than MAX_METADATA_DEPTH (the walk itself stays shallow)."""
    if isinstance(value, str):
        return redact.redact_text(value, hash_ip) if redact.might_hold_ip(value) else value
    if isinstance(value, (dict, list, tuple)):
        if depth >= MAX_METADATA_DEPTH:
            raise EventValidationError("metadata", f"nested deeper than {MAX_METADATA_DEPTH} levels")
        if isinstance(value, dict):
            return {(redact.redact_text(k, hash_ip) if isinstance(k, str) and redact.might_hold_ip(k) else k):
                    scrub(v, hash_ip, depth + 1) for k, v in value.items()}
        return [scrub(v, hash_ip, depth + 1) for v in value]
    return value


def encode_metadata(metadata: Any, max_bytes: int, hash_ip) -> tuple[dict, str]:
    """(scrubbed metadata, its compact JSON): validated once, encoded once."""
    if metadata is None or (type(metadata) is dict and not metadata):
        return {}, "{}"
    if not isinstance(metadata, Mapping):
        raise EventValidationError("metadata", f"must be a JSON object, got {type(metadata).__name__}")
    metadata = scrub(dict(metadata), hash_ip)
    try:
        encoded = _ENCODER.encode(metadata)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EventValidationError("metadata", f"not JSON-serialisable: {exc}") from None
    size = len(encoded) if encoded.isascii() else len(encoded.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise EventValidationError("metadata", f"{size} bytes exceeds the bound of {max_bytes}")
    if "\\u0000" in encoded and _NUL_ESCAPE.search(encoded):  # a real NUL, not the text "\\u0000"
        raise EventValidationError("metadata", "NUL characters are not allowed")
    if not encoded.isascii():
        try:
            encoded.encode("utf-8")
        except UnicodeEncodeError:
            raise EventValidationError("metadata", "contains invalid Unicode (lone surrogates)") from None
    if any(not isinstance(k, str) for k in metadata):
        metadata = json.loads(encoded)  # JSON turns non-string keys into strings; keep what will be stored
    return metadata, encoded


def check_metadata(metadata: Any, max_bytes: int, hash_ip) -> dict:
    return encode_metadata(metadata, max_bytes, hash_ip)[0]


def check_ts(ts: Any, now: float) -> float:
    if ts is None:
        return now
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise EventValidationError("ts", "datetime must be timezone-aware")
        ts = ts.timestamp()
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise EventValidationError("ts", f"must be epoch seconds or an aware datetime, got {ts!r}")
    if ts > now + FUTURE_SKEW_SECONDS:
        raise EventValidationError("ts", "is in the future")
    if ts < 946684800:  # 2000-01-01
        raise EventValidationError("ts", "is before 2000-01-01")
    return float(ts)


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 v7): new keys land at the right edge of the primary-key
    index instead of at random pages, which keeps batch inserts cheap."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62)
                     | (rand & ((1 << 62) - 1)))


_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def check_event_id(event_id: Any, *, required: bool = False) -> str:
    """A canonical UUID string; None means "stamp a new one" at track(), but is refused where the id
    is the idempotency key of something already sent (a stream entry): a fresh id would duplicate it."""
    if event_id is None:
        if required:
            raise EventValidationError("event_id", "is null (a stream entry must carry its idempotency key)")
        return str(uuid7())
    if isinstance(event_id, str) and _CANONICAL_UUID.match(event_id):
        return event_id  # already canonical (what track() sends): skip the UUID round trip
    if isinstance(event_id, uuid.UUID):
        return str(event_id)
    if not isinstance(event_id, str):  # a 32-digit number would otherwise parse as hex
        raise EventValidationError("event_id", f"must be a UUID string, got {type(event_id).__name__} "
                                               f"{str(event_id)[:40]!r}")
    try:
        return str(uuid.UUID(event_id))
    except (ValueError, TypeError, AttributeError):
        raise EventValidationError("event_id", f"{str(event_id)[:40]!r} is not a UUID") from None


def resolve_action(action: Any, metadata: Any) -> str:
    """A registered action name; the seed's ``watchlist`` + metadata ``action`` maps onto its weights."""
    forms = SEED_FORMS.get(action) if isinstance(action, str) and action not in ACTIONS else None
    if forms is not None:
        sub = metadata.get("action") if isinstance(metadata, Mapping) else None
        if sub not in forms:
            raise EventValidationError("metadata.action", f"must be one of {sorted(k for k in forms if k)} "
                                                          f"for action {action!r}, got {str(sub)[:40]!r}")
        return forms[sub]
    if not isinstance(action, str) or action not in ACTIONS:
        known = ", ".join(sorted([*ACTIONS, *SEED_FORMS]))
        raise EventValidationError("action", f"unknown action {str(action)[:40]!r}; known: {known}")
    return action


def build_event(*, user_id: Any, entity_id: Any, action: Any, metadata: Any = None, event_id: Any = None,
                ts: Any = None, max_metadata_bytes: int, hash_ip, now: float | None = None) -> dict:
    """A validated, normalised event ready for the stream (plain JSON values only)."""
    action = resolve_action(action, metadata)
    return {
        "event_id": check_event_id(event_id),
        "user_id": check_user_id(user_id),
        "entity_id": check_entity_id(entity_id),
        "action": action,
        "weight": ACTIONS[action],
        "ts": check_ts(ts, time.time() if now is None else now),
        "metadata": check_metadata(metadata, max_metadata_bytes, hash_ip),
    }


def revalidate(raw: Any, *, max_metadata_bytes: int, hash_ip, now: float | None = None) -> dict:
    """Worker-side check of an event decoded from the stream (it may not come from track())."""
    if not isinstance(raw, dict):
        raise EventValidationError("event", f"must be a JSON object, got {type(raw).__name__}")
    for name in ("event_id", "user_id", "entity_id", "action", "weight", "ts"):
        if name not in raw:
            raise EventValidationError(name, "is missing")
    action = raw["action"]
    if not isinstance(action, str) or not ACTION_RE.match(action):
        raise EventValidationError("action", f"{str(action)[:40]!r} is not a valid action name")
    meta, meta_json = encode_metadata(raw.get("metadata"), max_metadata_bytes, hash_ip)
    return {
        "event_id": check_event_id(raw["event_id"], required=True),
        "user_id": check_user_id(raw["user_id"]),
        "entity_id": check_entity_id(raw["entity_id"]),
        "action": action,
        "weight": _check_weight(raw["weight"]),
        "ts": check_ts(raw["ts"], time.time() if now is None else now),
        "metadata": meta,
        "metadata_json": meta_json,
    }


def epoch_to_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)
