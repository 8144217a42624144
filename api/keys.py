"""API keys: create, list, revoke, verify. Plain functions over a Session (the CLI and the API share them).

A key reads ``qp_<key_id>_<secret>``: ``key_id`` (8 characters) is public and finds
the row, the 43-character secret carries 256 random bits. Only the SHA-256 of the
whole key is stored, compared in constant time; the plaintext is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared_models.models.api import SCOPES, ApiKey

KEY_RE = re.compile(r"^qp_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")
NAME_RE = re.compile(r"^[\w .:@/-]{1,100}$")
TOUCH_EVERY = timedelta(seconds=60)


class ApiKeyError(ValueError):
    """A user error about keys; the message names the field."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_scopes(scopes) -> list[str]:
    wanted = sorted({str(s).strip().lower() for s in scopes if str(s).strip()})
    unknown = [s for s in wanted if s not in SCOPES]
    if not wanted or unknown:
        raise ApiKeyError(f"scope: {', '.join(unknown) or 'none given'}; choose from {', '.join(SCOPES)}")
    return wanted


def create_key(session: Session, name: str, scopes, created_by: str = "cli") -> tuple[ApiKey, str]:
    """A new key row and its plaintext (returned once, never stored)."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ApiKeyError("name: 1-100 characters of letters, digits, space and _ . : @ / -")
    scope_list = check_scopes(scopes)
    key_id = secrets.token_hex(4)
    plaintext = f"qp_{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(key_id=key_id, name=name, scopes=scope_list, key_hash=hash_key(plaintext),
                 created_by=created_by[:100])
    session.add(row)
    session.flush()
    return row, plaintext


def list_keys(session: Session, include_revoked: bool = True) -> list[ApiKey]:
    q = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        q = q.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(q))


def revoke_key(session: Session, key_id: str) -> ApiKey:
    """Revoke by public id (or the whole key); idempotent. LookupError when unknown."""
    m = KEY_RE.match(key_id.strip())
    kid = m.group(1) if m else key_id.strip()
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == kid).with_for_update())
    if row is None:
        raise LookupError(f"key_id: no API key {kid!r} (see `quantpipe api-key list`)")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(timezone.utc)
        session.flush()
    return row


def verify(session: Session, presented: str) -> ApiKey | None:
    """The active key matching ``presented``, else None (unknown, malformed, revoked)."""
    m = KEY_RE.match(presented or "")
    if m is None:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == m.group(1)))
    if row is None or not hmac.compare_digest(row.key_hash, hash_key(presented)) or row.revoked_at is not None:
        return None
    return row


def touch(session: Session, row: ApiKey, now: datetime | None = None) -> None:
    """Record use, at most once a minute per key (a write per request would cost more than the request)."""
    now = now or datetime.now(timezone.utc)
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now)
                        .execution_options(synchronize_session=False))


def allows(scopes, needed: str) -> bool:
    """``admin`` holds every scope; otherwise the scope itself is needed."""
    return needed in scopes or "admin" in scopes
