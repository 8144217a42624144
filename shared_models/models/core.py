"""Tables shared by several pools: market bars (patterns + discovery), dead letters, table versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Float, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..base import Base, JSONValue


class MarketBar(Base):
    """One OHLCV bar. ``adjusted`` is true when OHLC were split-adjusted on load."""

    __tablename__ = "market_bars"

    symbol: Mapped[str] = mapped_column(String(16), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)  # '1d', '1min'
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
    adjusted: Mapped[bool] = mapped_column(default=False, server_default="false")

    __table_args__ = (
        CheckConstraint("high >= low", name="high_ge_low"),
        CheckConstraint("volume >= 0", name="volume_nonneg"),
        Index("ix_market_bars_timeframe_ts", "timeframe", "ts"),
    )


class DeadLetter(Base):
    """Input a pool could not process, kept with the reason and the offending field.

    Write through ``shared_models.dead_letters`` (it caps the payload); a trigger fills
    ``payload_bytes``/``payload_sha256`` and caps rows written any other way.
    """

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    pool: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(100))  # task name or loader
    field: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[JSONValue] = mapped_column(JSONB)  # the input, or a string holding its first bytes
    payload_bytes: Mapped[int] = mapped_column(BigInteger)  # size of the whole input
    payload_sha256: Mapped[str] = mapped_column(String(64))  # hash of the whole input
    payload_truncated: Mapped[bool] = mapped_column(default=False, server_default="false")
    subject_key: Mapped[str | None] = mapped_column(String(64))  # who it is about (keyed hash), for erasure
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_dead_letters_pool_created_at", "pool", "created_at"),
        Index("ix_dead_letters_subject_key", "subject_key", postgresql_where=text("subject_key IS NOT NULL")),
    )


class TableVersion(Base):
    """A table's version, kept by statement triggers on it (migration 0017; today: ``trades``).

    Every statement that changes a row (or a TRUNCATE) sets a fresh value from a sequence, so an
    in-process cache of something derived from the table is valid exactly while the version it
    was built at holds: one primary-key lookup instead of counting the table.
    """

    __tablename__ = "table_versions"

    table_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
