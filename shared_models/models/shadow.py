"""Tables of the shadow pool (migration: migrations/versions/0005_shadow.py).

The registry holds every model with its role. "Exactly one champion at any
instant" is enforced by PostgreSQL itself, not only by code:

- a partial unique index on ``role`` where ``role = 'champion'`` makes a second
  champion impossible (checked per statement, so a promotion demotes first);
- a DEFERRED constraint trigger (created in the migration) re-checks at COMMIT
  that a registry which had a champion still has exactly one, so a transaction
  that demotes the champion without installing a successor cannot commit.
Other sessions never observe the demote-then-promote step in between (MVCC).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer,
                        String, Text, UniqueConstraint, func, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..base import Base

ROLES = ("champion", "challenger", "archived")
EVENTS = ("promote", "rollback", "reject", "manual")


class ShadowModel(Base):
    """A trading model: the champion trades live, challengers trade in shadow (0 % capital)."""

    __tablename__ = "shadow_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    model_type: Mapped[str] = mapped_column(String(50))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    role: Mapped[str] = mapped_column(String(16))
    allocation: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("role IN ('champion', 'challenger', 'archived')", name="role_valid"),
        CheckConstraint("allocation >= 0 AND allocation <= 1", name="allocation_unit"),
        CheckConstraint("role = 'champion' OR role = 'archived' OR allocation = 0", name="shadow_zero_alloc"),
        Index("uq_shadow_models_one_champion", "role", unique=True,
              postgresql_where=text("role = 'champion'")),
    )


class ShadowTrade(Base):
    """One closed trade of one model; ``shadow`` = paper trade of a challenger (no capital)."""

    __tablename__ = "shadow_trades"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("shadow_models.id", ondelete="CASCADE"))
    trade_id: Mapped[str] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ret: Mapped[float] = mapped_column("return", Float)
    pnl: Mapped[float] = mapped_column(Float)
    shadow: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    # the opportunity (signal) the trade acted on: champion and challenger trades on the same one are paired
    # (migration 0008)
    opportunity_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("model_id", "trade_id"),
        CheckConstraint("closed_at >= opened_at", name="closed_after_opened"),
        CheckConstraint("\"return\" > -1", name="return_gt_minus_one"),
        Index("ix_shadow_trades_model_closed", "model_id", "closed_at", "id"),
        Index("ix_shadow_trades_model_opportunity", "model_id", "opportunity_id",
              postgresql_where=text("opportunity_id IS NOT NULL")),
    )


class ShadowEvaluation(Base):
    """One look of the sequential test: challenger vs champion at ``n_trades`` (natural key)."""

    __tablename__ = "shadow_evaluations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    challenger_id: Mapped[int] = mapped_column(ForeignKey("shadow_models.id", ondelete="CASCADE"))
    champion_id: Mapped[int] = mapped_column(ForeignKey("shadow_models.id", ondelete="CASCADE"))
    n_trades: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB)
    elapsed_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("challenger_id", "champion_id", "n_trades"),
        CheckConstraint("decision IN ('APPROVED', 'PENDING', 'REJECTED')", name="decision_valid"),
    )


class PromotionEvent(Base):
    """Promotion history: who changed the champion, why, with what evidence, how fast."""

    __tablename__ = "shadow_promotions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(String(16))
    from_model_id: Mapped[int | None] = mapped_column(ForeignKey("shadow_models.id", ondelete="SET NULL"))
    to_model_id: Mapped[int | None] = mapped_column(ForeignKey("shadow_models.id", ondelete="SET NULL"))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100))
    elapsed_ms: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("event IN ('promote', 'rollback', 'reject', 'manual')", name="event_valid"),
        Index("ix_shadow_promotions_created", "created_at"),
    )
