"""Tables of the patterns pool (migration: migrations/versions/0003_patterns.py).

``integration_events`` and its SQL function / view are a contract with the
TickStockAppV2 consumer (DESIGN §4): column names and types are fixed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (BigInteger, DateTime, Float, ForeignKey, Index, Integer, Numeric, String, Text,
                        UniqueConstraint, func, text)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from ..base import Base


class IntegrationEvent(Base):
    """One checkpoint of a flow (PATTERN_PUBLISHED, EVENT_RECEIVED, ...) or a heartbeat."""

    __tablename__ = "integration_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    event_type: Mapped[str] = mapped_column(String(50))
    source_system: Mapped[str] = mapped_column(String(50))
    checkpoint: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str | None] = mapped_column(String(100))
    symbol: Mapped[str | None] = mapped_column(String(20))
    pattern_name: Mapped[str | None] = mapped_column(String(50))
    confidence: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    user_count: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    latency_ms: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("idx_integration_events_flow_id", "flow_id"),
        Index("idx_integration_events_timestamp", text("timestamp DESC")),
        Index("idx_integration_events_symbol", "symbol"),
        Index("idx_integration_events_pattern", "pattern_name"),
    )


class PatternDetection(Base):
    """A detected pattern; (symbol, pattern, tier, bar_ts) is the idempotency key."""

    __tablename__ = "pattern_detections"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(20))
    pattern: Mapped[str] = mapped_column(String(50))
    tier: Mapped[str] = mapped_column(String(10))  # daily | intraday | combo
    bar_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    flow_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    confidence: Mapped[float] = mapped_column(Float)
    current_price: Mapped[float] = mapped_column(Float)
    price_change: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
    indicators: Mapped[dict[str, Any]] = mapped_column(JSONB)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("symbol", "pattern", "tier", "bar_ts", name="uq_pattern_detections_key"),
        Index("ix_pattern_detections_detected_at", "detected_at"),
        Index("ix_pattern_detections_symbol_bar_ts", "symbol", "bar_ts"),
    )


class PatternOutbox(Base):
    """The event to publish, written with its detection; ``sent_at`` NULL until relayed."""

    __tablename__ = "pattern_outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    detection_id: Mapped[int] = mapped_column(ForeignKey("pattern_detections.id", ondelete="CASCADE"), unique=True)
    flow_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    channel: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_pattern_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
    )


class BacktestJob(Base):
    """A backtest requested on ``tickstock.jobs.backtest``; job_id is the consumer's id."""

    __tablename__ = "backtest_jobs"

    job_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(100))
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20), default="queued", server_default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    results: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PatternScanState(Base):
    """Watermark of the incremental scan: the newest bar already scanned per symbol and tier."""

    __tablename__ = "pattern_scan_state"

    symbol: Mapped[str] = mapped_column(String(20), primary_key=True)
    tier: Mapped[str] = mapped_column(String(10), primary_key=True)
    last_bar_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PatternBarVersion(Base):
    """Version of a (symbol, timeframe)'s stored bars, kept by statement triggers on market_bars.

    Appending newer bars leaves ``version`` unchanged (``max_ts`` moves); rewriting history bumps
    it. The live path's in-worker window cache is valid only while the version it saw holds.
    """

    __tablename__ = "pattern_bar_versions"

    symbol: Mapped[str] = mapped_column(String(20), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    max_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_min_ts: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MarketBarCorrection(Base):
    """A stored bar rewritten with other values: both versions, who wrote it (migration 0009 trigger)."""

    __tablename__ = "market_bar_corrections"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(16))
    timeframe: Mapped[str] = mapped_column(String(8))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    old_open: Mapped[float] = mapped_column(Float)
    old_high: Mapped[float] = mapped_column(Float)
    old_low: Mapped[float] = mapped_column(Float)
    old_close: Mapped[float] = mapped_column(Float)
    old_volume: Mapped[float] = mapped_column(Float)
    old_adjusted: Mapped[bool] = mapped_column()
    new_open: Mapped[float] = mapped_column(Float)
    new_high: Mapped[float] = mapped_column(Float)
    new_low: Mapped[float] = mapped_column(Float)
    new_close: Mapped[float] = mapped_column(Float)
    new_volume: Mapped[float] = mapped_column(Float)
    new_adjusted: Mapped[bool] = mapped_column()
    source: Mapped[str] = mapped_column(String(100))
    corrected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_market_bar_corrections_bar", "symbol", "timeframe", "ts"),)
