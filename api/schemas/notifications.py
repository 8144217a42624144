"""Schemas of the notification admin routes and the per-user pattern alerts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Priority = Literal["low", "medium", "high", "critical"]
Format = Literal["json", "slack", "email"]
Status = Literal["pending", "sending", "delivered", "dead", "cancelled"]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="Webhook URL (json/slack) or email address (email)")
    events: list[str] = Field(min_length=1, max_length=20,
                              description="Event names, a family such as shadow.*, or * for every event")
    format: Format | None = Field(None, description="json (signed webhook, default for URLs), slack, email")
    min_priority: Priority = "low"
    name: str | None = Field(None, min_length=1, max_length=100)


class Subscription(BaseModel):
    id: int
    name: str
    target: str
    format: Format
    events: list[str]
    min_priority: Priority
    created_by: str
    created_at: str
    removed_at: str | None
    active: bool


class Created(BaseModel):
    subscription: Subscription
    secret: str = Field(description="The signing secret: shown in this response only, never again")


class Removed(Subscription):
    cancelled_deliveries: int


class AttemptOut(BaseModel):
    attempt: int
    worker: str
    started_at: str
    finished_at: str | None
    http_status: int | None = Field(description="HTTP status, or the SMTP reply code for email")
    error: str | None
    duration_ms: float | None


class DeliveryOut(BaseModel):
    id: int
    subscription_id: int
    subscription: str
    event: str
    priority: Priority
    title: str
    alert: str
    idempotency_key: str
    status: Status
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut]


class UserAlert(BaseModel):
    id: int
    flow_id: str
    detection_id: int
    symbol: str
    pattern: str
    tier: str
    confidence: float
    reason: Literal["pinned", "interest"]
    score: float | None = Field(description="The symbol's decayed interest score when the pattern was published")
    why: str
    created_at: float = Field(description="When it was published (epoch seconds)")
    bar_ts: float | None = Field(description="Time of the bar that completed the pattern (epoch seconds)")
    current_price: float | None
    price_change: float | None
    expires_at: float | None
