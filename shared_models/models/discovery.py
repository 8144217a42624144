"""Tables of the discovery pool (migrations 0004, 0010 and 0015).

Inputs: ``politicians`` and ``trades`` (loaded by ``loaders.congress``).
Outputs: ``pattern_discoveries``, ``anomaly_detections``, ``network_discoveries``,
``model_experiments``. Every output row has a natural key (unique constraint) so a
re-run of a scan upserts instead of duplicating; ``updated_at`` moves only when a
finding actually changed.

Names are the ones the main app of seed 002 uses (``pattern_type``, ``discovery_date``,
``model_name``, ``experiment_date``, UUID politician ids, ``politician_name``). The
names of the first release stay as synonyms for one release (``kind``,
``discovered_at``, ``detected_at``, ``name``, ``ran_at``): they work in Python, not in SQL.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Date, DateTime, Float, ForeignKey, Identity, Index,
                        Integer, String, Text, UniqueConstraint, func, select, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, column_property, declared_attr, mapped_column, synonym

from ..base import Base

TRADE_TYPES = ("purchase", "sale_full", "sale_partial", "exchange")
CHAMBERS = ("senate", "house")
# Politician ids are uuid5(namespace, natural key): the same person gets the same id in every
# database and on every re-load. (Frozen: migration seed_names carries a copy.)
POLITICIAN_NAMESPACE = uuid.UUID("5b0f7d3e-2f43-5c1e-9a57-6d0c9f1e4a21")


def politician_uuid(key: str) -> uuid.UUID:
    """The id of the politician whose natural key is ``key``."""
    return uuid.uuid5(POLITICIAN_NAMESPACE, key)


def _id_from_key(context) -> uuid.UUID:
    return politician_uuid(context.get_current_parameters()["key"])


def _subject_from_parameters(context) -> str:
    # A finding written by hand (seed 002's ``PatternDiscovery(...)``) has no subject: its
    # parameters identify it, so the same discovery written twice is one natural key.
    params = context.get_current_parameters().get("parameters")
    return "params:" + hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Politician(Base):
    """One person across both chambers' files and all spellings of the name."""

    __tablename__ = "politicians"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_id_from_key,
                                          server_default=text("gen_random_uuid()"))
    # bioguide id when known, else "name:<last>|<first>": stable across re-loads
    key: Mapped[str] = mapped_column(String(120), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    chamber: Mapped[str] = mapped_column(String(8))
    state: Mapped[str | None] = mapped_column(String(2))
    district: Mapped[str | None] = mapped_column(String(8))
    bioguide: Mapped[str | None] = mapped_column(String(16))
    aliases: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))  # every spelling
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("chamber IN ('senate', 'house')", name="chamber_known"),)


class Trade(Base):
    """One disclosed transaction, cleaned. ``row_hash`` is the hash of the raw source row."""

    __tablename__ = "trades"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    politician_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("politicians.id", ondelete="CASCADE"), index=True)
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
    """Columns every finding carries: about what, how sure, and the evidence."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), default=_subject_from_parameters)
    confidence: Mapped[float] = mapped_column(Float)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    description: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


_NAMES = Politician.__table__.alias("politician_names")


class _PoliticianFinding(_Finding):
    politician_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("politicians.id", ondelete="CASCADE"), index=True)

    @declared_attr
    def politician_name(cls) -> Mapped[str]:
        """Loaded with the row (one indexed lookup), so the seed's ``d.politician_name`` works
        under an AsyncSession too, where a lazy relationship load would fail."""
        return column_property(select(_NAMES.c.full_name).where(_NAMES.c.id == cls.politician_id)
                               .scalar_subquery())


class PatternDiscovery(_PoliticianFinding, Base):
    """A regularity in one politician's trading (cycle, concentration, timing)."""

    __tablename__ = "pattern_discoveries"

    pattern_type: Mapped[str] = mapped_column(String(40))
    strength: Mapped[float] = mapped_column(Float)
    discovery_date: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    kind = synonym("pattern_type")  # first-release name, for one release
    discovered_at = synonym("discovery_date")

    __table_args__ = (
        UniqueConstraint("politician_id", "pattern_type", "subject", name="uq_pattern_discoveries_natural_key"),
        CheckConstraint("strength BETWEEN 0 AND 1", name="strength_unit"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="confidence_unit"),
        Index("ix_pattern_discoveries_strength", "strength"),
        Index("ix_pattern_discoveries_discovery_date", "discovery_date"),
    )


class AnomalyDetection(_PoliticianFinding, Base):
    """A trade or filing out of the ordinary (late disclosure, size, abnormal return)."""

    __tablename__ = "anomaly_detections"

    anomaly_type: Mapped[str] = mapped_column(String(40))
    severity: Mapped[float] = mapped_column(Float)
    investigated: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    detection_date: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    kind = synonym("anomaly_type")  # first-release names, for one release
    detected_at = synonym("detection_date")

    __table_args__ = (
        UniqueConstraint("politician_id", "anomaly_type", "subject", name="uq_anomaly_detections_natural_key"),
        CheckConstraint("severity BETWEEN 0 AND 1", name="severity_unit"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="confidence_unit"),
        Index("ix_anomaly_detections_open", "severity", postgresql_where="NOT investigated"),
    )


class NetworkDiscovery(_Finding, Base):
    """Members trading together: a significant pair or a community of them."""

    __tablename__ = "network_discoveries"

    network_type: Mapped[str] = mapped_column(String(40))
    members: Mapped[list[str]] = mapped_column(JSONB)  # politician ids (UUID strings), sorted
    strength: Mapped[float] = mapped_column(Float)
    discovery_date: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    kind = synonym("network_type")  # first-release names, for one release
    discovered_at = synonym("discovery_date")

    __table_args__ = (
        UniqueConstraint("network_type", "subject", name="uq_network_discoveries_natural_key"),
        CheckConstraint("strength BETWEEN 0 AND 1", name="strength_unit"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="confidence_unit"),
    )


class ModelExperiment(Base):
    """A strategy experiment with its metrics and a deployment verdict."""

    __tablename__ = "model_experiments"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(100))
    params_hash: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB)
    deployment_ready: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(Text)
    experiment_date: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    name = synonym("model_name")  # first-release names, for one release
    ran_at = synonym("experiment_date")

    __table_args__ = (UniqueConstraint("model_name", "params_hash", name="uq_model_experiments_natural_key"),)


class DiscoveryScanRun(Base):
    """One full scan (migration 0015): done when ``network_done_at`` is set; ``summary`` is what
    ``scan all`` prints. Recorded here, not only in Celery's chord state, so a message lost in
    Redis is found and re-sent (``discovery.reconcile``) instead of stalling the scan."""

    __tablename__ = "discovery_scan_runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    politicians: Mapped[int] = mapped_column(Integer)
    reconciled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    network_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    network_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (
        CheckConstraint("politicians >= 0", name="politicians_nonnegative"),
        Index("ix_discovery_scan_runs_open", "started_at", postgresql_where=text("network_done_at IS NULL")),
    )


class DiscoveryScanPart(Base):
    """One politician of a run; ``done_at`` is set in the transaction that wrote its findings
    (or its dead letter: ``error``)."""

    __tablename__ = "discovery_scan_parts"

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("discovery_scan_runs.id", ondelete="CASCADE"),
                                              primary_key=True)
    politician_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("politicians.id", ondelete="CASCADE"),
                                                     primary_key=True)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    written: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
