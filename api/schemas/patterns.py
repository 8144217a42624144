"""Detected patterns, flow latency (``pattern_flow_analysis``) and producer health."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class Detection(BaseModel):
    id: int
    symbol: str
    pattern: str
    tier: str
    bar_ts: datetime
    confidence: float
    current_price: float
    price_change: float
    volume: float
    indicators: Any
    flow_id: uuid.UUID
    detected_at: datetime
    expires_at: datetime


class Latency(BaseModel):
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None


class Flow(BaseModel):
    flow_id: uuid.UUID
    symbol: str | None
    pattern_name: str | None
    start_time: datetime
    total_latency_ms: float | None
    checkpoints_logged: int
    flow_path: list[str]


class Histogram(BaseModel):
    edges_ms: list[float] = Field(description="Bucket i holds latencies in [edges[i], edges[i+1]); the last is open")
    counts: list[int]


class PatternCount(BaseModel):
    pattern: str
    tier: str
    count: int


class Flows(BaseModel):
    window_minutes: int
    flows: int = Field(description="Flows started in the window")
    complete_flows: int = Field(description="Flows with at least two checkpoints (published and received)")
    latency_ms: Latency = Field(description="First to last checkpoint, over complete flows")
    recent: list[Flow]
    histogram: Histogram = Field(description="Complete flows per latency bucket")


class ProducerHealth(BaseModel):
    status: str = Field(description="healthy, degraded (outbox backlog) or offline (heartbeat > 30 s or never)")
    heartbeat_age_seconds: float | None
    producer_alive: bool
    outbox_backlog: int
    patterns_detected: int
    events_last_minute: int
    last_pattern_time: float | None


class Closes(BaseModel):
    symbol: str
    days: list[date]
    close: list[float]
