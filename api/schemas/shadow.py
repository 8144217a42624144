"""Seed 004's shapes: ``champion{model_name, metrics{win_rate, sharpe_ratio, …}, trade_count}``,
``challengers[{model_name, promotion_status, promotion_score, trade_count, metrics}]``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Metrics(BaseModel):
    win_rate: float | None
    sharpe_ratio: float | None
    mean_return: float | None
    max_drawdown: float | None


class Champion(BaseModel):
    model_name: str
    model_type: str
    metrics: Metrics
    trade_count: int
    allocation: float


class Challenger(BaseModel):
    model_name: str
    model_type: str
    promotion_status: str = Field(description="Last decision: APPROVED / PENDING / REJECTED")
    promotion_score: float = Field(description="0-100 score of the last evaluation (0 before the first)")
    trade_count: int
    min_trades: int
    evaluated_at_trades: int | None
    metrics: Metrics
    allocation: float
    p_best: float | None = Field(description="Thompson sampling: probability this model is best")


class Status(BaseModel):
    champion: Champion | None
    challengers: list[Challenger]


class Comparison(BaseModel):
    model_config = ConfigDict(extra="allow")

    challenger: str
    champion: str
    decision: str
    score: float | None
    trade_count: int
    min_trades: int
    evaluation: dict[str, Any] | None = Field(description="Criteria, tests and metrics (null before the first look)")


class DeployIn(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_name: str = Field(min_length=1, max_length=100)
    model_type: str = Field(min_length=1, max_length=50)
    description: str = Field("", max_length=2000)
    parameters: dict[str, Any] = Field(default_factory=dict)


class Deployed(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_type: str
    role: str
    allocation: float
    created: bool


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(False, description="Promote even if the evaluation does not approve (needs a reason)")
    reason: str | None = Field(None, max_length=500)


class Promoted(BaseModel):
    champion: str
    decision: str
    message: str
    elapsed_ms: float | None
    evaluation: dict[str, Any] | None


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class RolledBack(BaseModel):
    champion: str
    previous_champion: str
    elapsed_ms: float


class HistoryItem(BaseModel):
    id: int
    event: str
    from_model: str | None
    to_model: str | None
    reason: str
    actor: str
    elapsed_ms: float
    created_at: datetime


class TradesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trades: list[dict[str, Any]] = Field(min_length=1, max_length=10_000, description=(
        "Closed trades: trade_id, opened_at, closed_at (ISO-8601), return (0.012 = +1.2 %), pnl, "
        "optional shadow. Idempotent by trade_id; bad rows are dead-lettered, good ones stored."))


class Recorded(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    inserted: int
    duplicates: int
    rejected: int
    total: int
    evaluation_enqueued: bool


class Series(BaseModel):
    model_name: str
    role: str
    trade_count: int
    n: list[int] = Field(description="Trade number (1-based) of each point; evenly thinned to at most `points`")
    cumulative_return: list[float] = Field(description="Sum of trade returns up to trade n")
    win_rate: list[float] = Field(description="Share of winning trades up to trade n")


class Look(BaseModel):
    n_trades: int
    boundary: float = Field(description="Upper (promotion) boundary of the Welch z at this planned look")
    z: float | None = Field(description="Welch z of the evaluation stored at this look (null: not evaluated)")
    decision: str | None
    score: float | None


class Sequential(BaseModel):
    challenger: str
    champion: str | None
    alpha: float
    spending: str
    min_trades: int
    interval: int
    horizon: int
    trade_count: int
    looks: list[Look] = Field(description="Every planned look; evaluated ones carry their z, decision and score")
    latest: dict[str, Any] | None = Field(description="The latest stored evaluation: criteria, score, decision")
