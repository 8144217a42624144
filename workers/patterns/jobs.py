"""The one schema of a backtest request (``tickstock.jobs.backtest``), whose errors name the field.

The consumer sends ``{"type": "backtest_job", "job_id", "user_id", "symbols", "start_date",
"end_date", "patterns", "parameters": {"hold_bars" | "hold_days"}}``. Unknown top-level keys are
ignored (the consumer may add its own); what is used is checked: a job id that fits
``backtest_jobs.job_id``, ASCII tickers (``shared_models.bars``), ISO dates between 1900 and
today with ``end_date >= start_date``, known pattern names, a holding period of 1..250 bars.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared_models.bars import FieldError, Symbol, field_error

from .detection import ALL_PATTERNS

JobId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@/+\-]+$")]


class JobError(FieldError):
    """A backtest request that cannot run."""


class Parameters(BaseModel):
    model_config = ConfigDict(extra="allow")

    hold_bars: int = Field(5, ge=1, le=250)

    @model_validator(mode="before")
    @classmethod
    def _hold_days_alias(cls, v: Any) -> Any:
        if isinstance(v, dict) and "hold_bars" not in v and "hold_days" in v:
            return {**v, "hold_bars": v["hold_days"]}
        return v


class BacktestJob(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["backtest_job"] = "backtest_job"
    job_id: JobId
    user_id: Annotated[str, Field(max_length=100)] | None = None
    symbols: Annotated[list[Symbol], Field(min_length=1, max_length=1000)]
    start_date: date
    end_date: date
    patterns: Annotated[list[str], Field(max_length=len(ALL_PATTERNS))] | None = None
    parameters: Parameters = Field(default_factory=Parameters)

    @field_validator("user_id", mode="before")
    @classmethod
    def _id_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("start_date", "end_date")
    @classmethod
    def _plausible(cls, v: date) -> date:
        if not date(1900, 1, 1) <= v <= date.today():
            raise ValueError(f"{v.isoformat()} is outside 1900-01-01 .. today")
        return v

    @field_validator("patterns")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        unknown = sorted(set(v or ()) - set(ALL_PATTERNS))
        if unknown:
            raise ValueError(f"unknown {unknown[:5]}")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> "BacktestJob":
        if self.end_date < self.start_date:
            raise JobError("end_date", f"{self.end_date} is before start_date {self.start_date}", "before start")
        return self


def validate_job(msg: Any) -> dict:
    """The normalised request stored in ``backtest_jobs.request``, or JobError naming the field."""
    if not isinstance(msg, dict):
        raise JobError("message", f"must be a JSON object, got {type(msg).__name__}", "not an object")
    try:
        job = BacktestJob.model_validate(msg)
    except ValidationError as exc:
        raise field_error(exc.errors(include_url=False)[0], JobError, "message") from None
    return {"job_id": job.job_id, "user_id": job.user_id, "symbols": list(dict.fromkeys(job.symbols)),
            "start_date": job.start_date.isoformat(), "end_date": job.end_date.isoformat(),
            "patterns": job.patterns or list(ALL_PATTERNS),
            "parameters": job.parameters.model_dump()}
