"""Tables of the notifications pool (migration: migrations/versions/0012_notifications.py).

An alert (``notification_alerts``) is one fact worth telling people about, unique by
its ``alert_key`` so the same fact raised twice is one alert. Each matching
subscription gets one outbox row (``notification_deliveries``), written by
``notify_alert()`` in the transaction that recorded the fact; the notify worker
claims due rows, sends them and records every try (``notification_attempts``).
``user_pattern_alerts`` is the per-user audience of each published pattern.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (ARRAY, BigInteger, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String,
                        Text, UniqueConstraint, Uuid, func, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..base import Base
from .ingest import UserId

PRIORITIES = ("low", "medium", "high", "critical")
FORMATS = ("json", "slack", "email")
STATUSES = ("pending", "sending", "delivered", "dead", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Subscription(Base):
    """Where alerts go: a webhook URL (json/slack) or an email address, for some events.

    ``secret_enc`` is the per-subscription signing secret, Fernet-encrypted with the key
    from QUANTPIPE_NOTIFY_SECRET_KEY (or QUANTPIPE_HOME); only the notify role may read it.
    """

    __tablename__ = "notification_subscriptions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(2000))
    format: Mapped[str] = mapped_column(String(8))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    min_priority: Mapped[str] = mapped_column(String(8))
    secret_enc: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(_in("format", FORMATS), name="format_known"),
        CheckConstraint(_in("min_priority", PRIORITIES), name="min_priority_known"),
        CheckConstraint("cardinality(events) > 0", name="events_nonempty"),
    )


class Alert(Base):
    """One fact worth telling (a promotion, a critical anomaly, …), with the numbers behind it."""

    __tablename__ = "notification_alerts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    uid: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, server_default=text("gen_random_uuid()"))
    alert_key: Mapped[str] = mapped_column(String(200), unique=True)
    event: Mapped[str] = mapped_column(String(40))
    priority: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(_in("priority", PRIORITIES), name="priority_known"),
        Index("ix_notification_alerts_created_at", "created_at"),
    )


class Delivery(Base):
    """The outbox row of one (subscription, alert): sent at most once successfully, retried until then."""

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("notification_alerts.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("notification_subscriptions.id", ondelete="CASCADE"),
                                                 index=True)
    idempotency_key: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, server_default=text("gen_random_uuid()"))
    status: Mapped[str] = mapped_column(String(12), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("alert_id", "subscription_id", name="uq_notification_deliveries_alert_subscription"),
        CheckConstraint(_in("status", STATUSES), name="status_known"),
        Index("ix_notification_deliveries_due", "next_attempt_at",
              postgresql_where=text("status IN ('pending', 'sending')")),
    )


class Attempt(Base):
    """One try of a delivery: when, the HTTP status (or SMTP code), the error, how long it took."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("notification_deliveries.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("delivery_id", "attempt", name="uq_notification_attempts_delivery_attempt"),)


class UserPatternAlert(Base):
    """A published pattern on a symbol in the user's library: who gets it, and why.

    Written by ``pattern_audience()`` in the publishing transaction; no foreign key to
    ``pattern_detections`` (the rows are inserted by the same statement).
    """

    __tablename__ = "user_pattern_alerts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(UserId)
    detection_id: Mapped[int] = mapped_column(BigInteger)
    flow_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    symbol: Mapped[str] = mapped_column(String(20))
    pattern: Mapped[str] = mapped_column(String(50))
    tier: Mapped[str] = mapped_column(String(10))
    confidence: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("user_id", "detection_id", name="uq_user_pattern_alerts_user_detection"),
        CheckConstraint("reason IN ('pinned', 'interest')", name="reason_known"),
        Index("ix_user_pattern_alerts_user_newest", "user_id", text("created_at DESC"), text("id DESC")),
    )
