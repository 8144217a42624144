"""Seed 002's shapes: what the main app's frontend reads (``pattern_type``, ``strength``,
``politician_name``, ``description`` …). Extra columns the pool adds pass through."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", from_attributes=True)


class PatternDiscoveryOut(_Open):
    id: int
    politician_id: uuid.UUID
    politician_name: str | None
    pattern_type: str
    strength: float = Field(ge=0, le=1)
    confidence: float = Field(ge=0, le=1)
    parameters: Any
    description: str
    discovery_date: datetime


class AnomalyOut(_Open):
    id: int
    politician_id: uuid.UUID
    politician_name: str | None
    anomaly_type: str
    severity: float = Field(ge=0, le=1)
    confidence: float = Field(ge=0, le=1)
    investigated: bool
    description: str
    detection_date: datetime


class NetworkOut(_Open):
    id: int
    network_type: str
    members: list[str]
    member_names: list[str | None]
    strength: float = Field(ge=0, le=1)
    confidence: float = Field(ge=0, le=1)
    description: str
    discovery_date: datetime


class ExperimentOut(_Open):
    id: int
    model_name: str
    deployment_ready: bool
    parameters: Any
    metrics: Any
    description: str
    experiment_date: datetime


class PoliticianOut(_Open):
    id: uuid.UUID
    full_name: str
    chamber: str
    state: str | None
    trade_count: int


class TradeOut(_Open):
    id: int
    ticker: str | None
    transaction_date: date
    disclosure_date: date | None
    type: str


class PoliticianDetail(BaseModel):
    politician: PoliticianOut
    trades: list[TradeOut]
    patterns: list[PatternDiscoveryOut]
    anomalies: list[AnomalyOut]
    network: list[NetworkOut]


class Investigated(BaseModel):
    model_config = ConfigDict(extra="forbid")

    investigated: bool = Field(True, description="false re-opens the anomaly")
