"""Tables of the ingest pool (migration: migrations/versions/0002_ingest.py).

Privacy by construction: no column can hold a raw IP address or a raw user agent.
Networks are truncated prefixes (/24, /48), addresses and device ids are keyed
HMACs, user agents are reduced to family/OS.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Index, Integer, SmallInteger, String, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..base import Base

# The app's user id as text (ints as their digits, UUIDs canonical, other ids as given; see
# workers.ingestion.events.check_user_id), compared bytewise (collation "C": no locale rules on
# a key). Migration 0011 turned the bigint columns into this.
UserId = String(64, collation="C")


class IngestEvent(Base):
    """One raw activity event; ``event_id`` is the idempotency key (ON CONFLICT DO NOTHING)."""

    __tablename__ = "ingest_events"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[str] = mapped_column(UserId)
    entity_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    weight: Mapped[float] = mapped_column(Float)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_ingest_events_user_id_ts", "user_id", "ts"),
        Index("ix_ingest_events_ts", "ts", postgresql_using="brin"),
    )


class Interest(Base):
    """Decayed interest of a user in an entity: ``score`` is its value at ``score_at``.

    Lazy decay: score(t) = score · 2^(−(t − score_at)/half_life); no cap, so heavy users
    keep a meaningful ranking.
    """

    __tablename__ = "ingest_interests"

    user_id: Mapped[str] = mapped_column(UserId, primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    score_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_count: Mapped[int] = mapped_column(BigInteger)
    action_counts: Mapped[dict[str, int]] = mapped_column(JSONB)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    # who follows a symbol: a published pattern's audience (migration 0012)
    __table_args__ = (Index("ix_ingest_interests_entity_id", "entity_id"),)


class Holding(Base):
    """An entity held in the user's portfolio: pinned at the top of the library."""

    __tablename__ = "ingest_holdings"

    user_id: Mapped[str] = mapped_column(UserId, primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_ingest_holdings_entity_id", "entity_id"),)


class LoginAttempt(Base):
    """A verify_login call and, once the application reports it, its outcome."""

    __tablename__ = "ingest_login_attempts"

    attempt_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[str] = mapped_column(UserId)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ip_hmac: Mapped[str | None] = mapped_column(String(64))
    network: Mapped[str | None] = mapped_column(String(64))  # truncated prefix, e.g. 203.0.113.0/24
    device_hash: Mapped[str | None] = mapped_column(String(64))
    ua_family: Mapped[str | None] = mapped_column(String(32))
    ua_os: Mapped[str | None] = mapped_column(String(32))
    hour: Mapped[int] = mapped_column(SmallInteger)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    trust_score: Mapped[float] = mapped_column(Float)
    action: Mapped[str] = mapped_column(String(16))
    success: Mapped[bool | None] = mapped_column(Boolean)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_ingest_login_attempts_user_id_created_at", "user_id", "created_at"),
                      Index("ix_ingest_login_attempts_network_created_at", "network", "created_at"))


class KnownSignal(Base):
    """What a user's confirmed logins looked like: kind ∈ device, network, ua, hour, fingerprint."""

    __tablename__ = "ingest_known_signals"

    user_id: Mapped[str] = mapped_column(UserId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Erasure(Base):
    """Right-to-erasure tombstone: events of the user with ``ts <= erased_at`` are never written again.

    The user is named by a keyed hash (``store.erasure_key``), not the id, so no row mentions them.

    Kept for good (it holds nothing but the id): a batch read before the erasure may be written
    any time later, e.g. after an outage of every ingest worker.
    """

    __tablename__ = "ingest_erasures"

    user_key: Mapped[str] = mapped_column(String(32), primary_key=True)  # store.erasure_key(user_id)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
