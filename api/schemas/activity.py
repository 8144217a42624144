"""Activity tracking for apps not written in Python (seed 000's calls over HTTP).

Request models check only shapes; the ingest pool's own validation (the same as
``track()``) checks values and names the field, so HTTP and Python callers get the
same rules.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

UserId = int | str
MAX_BATCH = 5000


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId = Field(description="The app's user id")
    entity_id: str = Field(max_length=200, description='What the user acted on, e.g. "AAPL"')
    action: str = Field(max_length=64, description='view, trade, watchlist, analyze, …')
    metadata: dict[str, Any] | None = None
    event_id: str | None = Field(None, max_length=64, description="UUID; resending the same id stores it once")
    ts: float | str | None = Field(None, description="Event time (epoch seconds or ISO-8601); default now")


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class Accepted(BaseModel):
    accepted: int
    event_ids: list[str]


class LibraryItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    entity_id: str
    score: float
    tier: str
    event_count: int
    action_counts: dict[str, int]


class Profile(BaseModel):
    model_config = ConfigDict(extra="allow")

    user_id: UserId
    library: list[LibraryItem]
    fingerprint: dict[str, Any]
    totals: dict[str, Any]


class RequestContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    ip_address: str | None = Field(None, max_length=64, description="Hashed at once; never stored raw")
    user_agent: str | None = Field(None, max_length=1024)
    device_fingerprint: str | None = Field(None, max_length=512)


class LoginVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId
    request_context: RequestContext | None = None


class TrustResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    user_id: UserId
    attempt_id: str
    trust_score: float = Field(ge=0, le=1)
    risk_level: str
    action: str = Field(description="allow, monitor, require_mfa (step-up below 0.5) or block")
    reasons: list[Any]


class LoginConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId
    attempt_id: str = Field(max_length=64)
    success: bool


class Confirmed(BaseModel):
    attempt_id: str
    success: bool | None
    already_confirmed: bool


class Erased(BaseModel):
    user_id: UserId
    deleted: dict[str, int] = Field(description="Rows deleted per table")


class Usage(BaseModel):
    model_config = ConfigDict(extra="allow")

    users: int = Field(description="Users tracked")
    events: int
    events_per_user: float
    top_users: list[dict[str, Any]]
    top_entities: list[dict[str, Any]] = Field(description="Most tracked entities")
    license: dict[str, Any] = Field(description="Mode (dev / licensed / invalid), usage against the limit")
    cache: dict[str, Any] = Field(description="Hit rate of the shared cache")


class StepUp(BaseModel):
    attempt_id: str
    user_id: UserId  # text since migration 0011: an app's string and UUID ids too
    created_at: Any
    trust_score: float
    action: str = Field(description="require_mfa (step-up) or block")
    success: bool | None = Field(description="Outcome the app reported (null: not yet)")


class Activity(BaseModel):
    window_minutes: int
    events_per_second: float = Field(description="Events stored per second over the last minute")
    events_per_minute: list[dict[str, Any]] = Field(description="[{minute, events}] over the window, oldest first")
    logins: int = Field(description="Logins verified in the window")
    step_ups: int = Field(description="Of which stepped up to 2FA or blocked (trust < 0.5)")
    trust_histogram: dict[str, list] = Field(description="edges (0..1 by 0.1) and counts of trust scores in the window")
    recent_step_ups: list[StepUp]
