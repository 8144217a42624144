"""Models of /health and the caller's key."""

from __future__ import annotations

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
