"""Models of /health and the caller's key."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PoolHealth(BaseModel):
    workers: int = Field(description="Workers consuming the pool's queue")
    hostnames: list[str]
    queue_depth: int | None = Field(description="Tasks waiting (null when Redis is down)")


class Health(BaseModel):
    status: str = Field(description="ok or unhealthy", examples=["ok"])
    database: bool
    redis: bool
    schema_revision: str | None
    schema_head: str
    pools: dict[str, PoolHealth]
    errors: dict[str, str] = Field(description="What failed, per part")
    age_seconds: float = Field(description="Age of these facts (cached briefly)")


class Me(BaseModel):
    key_id: str
    name: str
    scopes: list[str]


class LastError(BaseModel):
    source: str
    field: str | None
    reason: str
    at: datetime
    age_seconds: float


class PoolStatus(BaseModel):
    workers: int
    hostnames: list[str]
    queue_depth: int | None
    tasks_per_second: float | None = Field(description="Tasks finished per second since the previous look "
                                                        "(null until there have been two)")
    dead_letters: int = Field(description="Inputs of this pool kept as dead letters")
    last_error: LastError | None = Field(description="The newest dead letter of this pool")


class Pools(BaseModel):
    healthy: bool
    database: bool
    redis: bool
    schema_revision: str | None
    schema_head: str
    errors: dict[str, str]
    heartbeat_age_seconds: float | None = Field(description="Age of the patterns producer's heartbeat")
    age_seconds: float
    pools: dict[str, PoolStatus]
