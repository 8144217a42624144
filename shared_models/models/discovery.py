"""Tables of the discovery pool (migration: migrations/versions/0004_discovery.py).

Inputs: ``politicians`` and ``trades`` (loaded by ``loaders.congress``).
Outputs: ``pattern_discoveries``, ``anomaly_detections``, ``network_discoveries``,
``model_experiments``. Every output row has a natural key (unique constraint) so a
re-run of a scan upserts instead of duplicating; ``updated_at`` moves only when a
finding actually changed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Date, DateTime, Float, ForeignKey, Identity, Index,
                        Integer, String, Text, UniqueConstraint, func, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..base import Base

TRADE_TYPES = ("purchase", "sale_full", "sale_partial", "exchange")
CHAMBERS = ("senate", "house")


class Politician(Base):
    """One person across both chambers' files and all spellings of the name."""

    __tablename__ = "politicians"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # bioguide id when known, else "name:<last>|<first>": stable across re-loads
    key: Mapped[str] = mapped_column(String(120), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    chamber: Mapped[str] = mapped_column(String(8))
    state: Mapped[str | None] = mapped_column(String(2))
    district: Mapped[str | None] = mapped_column(String(8))
    bioguide: Mapped[str | None] = mapped_column(String(16))
    aliases: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))  # every spelling seen
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("chamber IN ('senate', 'house')", name="chamber_known"),)


class Trade(Base):
    """One disclosed transaction, cleaned. ``row_hash`` is the hash of the raw source row."""

    __tablename__ = "trades"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    politician_id: Mapped[int] = mapped_column(ForeignKey("politicians.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(40))
    row_hash: Mapped[str] = mapped_column(String(64))
    ticker: Mapped[str | None] = mapped_column(String(16))
    asset_description: Mapped[str | None] = mapped_column(Text)
    asset_type: Mapped[str | None] = mapped_column(String(64))
    transaction_date: Mapped[date] = mapped_column(Date)
    disclosure_date: Mapped[date | None] = mapped_column(Date)
    disclosure_lag_days: Mapped[int | None] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(16))
    amount_min: Mapped[float | None] = mapped_column(Float)
    amount_max: Mapped[float | None] = mapped_column(Float)
    amount_raw: Mapped[str | None] = mapped_column(String(64))
    ptr_link: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("source", "row_hash", name="uq_trades_source_row_hash"),
        CheckConstraint("type IN ('purchase', 'sale_full', 'sale_partial', 'exchange')", name="type_known"),
        CheckConstraint("amount_max IS NULL OR amount_min IS NULL OR amount_max >= amount_min",
                        name="amount_range"),
        Index("ix_trades_ticker_transaction_date", "ticker", "transaction_date"),
    )


class _Finding:
    """Columns every finding carries: what kind, about what, how sure, and the evidence."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    description: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class _PoliticianFinding(_Finding):
    politician_id: Mapped[int] = mapped_column(ForeignKey("politicians.id", ondelete="CASCADE"), index=True)


class PatternDiscovery(_PoliticianFinding, Base):
    """A regularity in one politician's trading (cycle, concentration, timing)."""

    __tablename__ = "pattern_discoveries"

    strength: Mapped[float] = mapped_column(Float)
    discovered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("politician_id", "kind", "subject", name="uq_pattern_discoveries_natural_key"),
        CheckConstraint("strength BETWEEN 0 AND 1", name="strength_unit"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="confidence_unit"),
        Index("ix_pattern_discoveries_strength", "strength"),
    )


class AnomalyDetection(_PoliticianFinding, Base):
    """A trade or filing out of the ordinary (late disclosure, size, abnormal return)."""

    __tablename__ = "anomaly_detections"

    severity: Mapped[float] = mapped_column(Float)
    investigated: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("politician_id", "kind", "subject", name="uq_anomaly_detections_natural_key"),
        CheckConstraint("severity BETWEEN 0 AND 1", name="severity_unit"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="confidence_unit"),
        Index("ix_anomaly_detections_open", "severity", postgresql_where="NOT investigated"),
    )


class NetworkDiscovery(_Finding, Base):
    """Members trading together: a significant pair or a community of them."""

    __tablename__ = "network_discoveries"

    members: Mapped[list[int]] = mapped_column(JSONB)  # politician ids, sorted
    strength: Mapped[float] = mapped_column(Float)
    discovered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("kind", "subject", name="uq_network_discoveries_natural_key"),
        CheckConstraint("strength BETWEEN 0 AND 1", name="strength_unit"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="confidence_unit"),
    )


class ModelExperiment(Base):
    """A strategy experiment with its metrics and a deployment verdict."""

    __tablename__ = "model_experiments"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    params_hash: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB)
    deployment_ready: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(Text)
    ran_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("name", "params_hash", name="uq_model_experiments_natural_key"),)
