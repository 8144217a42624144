"""The one backtest-request schema: each bad field is refused naming it (no message parsing)."""

import pytest

from workers.patterns.jobs import JobError, validate_job

GOOD = {"type": "backtest_job", "job_id": "bt-1", "user_id": 7, "symbols": ["aapl", "MSFT"],
        "start_date": "2020-01-01", "end_date": "2020-12-31", "patterns": ["Gap_Up"], "parameters": {"hold_days": 3}}


def test_a_good_request_is_normalised():
    job = validate_job({**GOOD, "extra_key_of_the_consumer": 1})
    assert job["symbols"] == ["AAPL", "MSFT"] and job["parameters"]["hold_bars"] == 3
    assert job["start_date"] == "2020-01-01" and job["patterns"] == ["Gap_Up"]
    assert len(validate_job({k: v for k, v in GOOD.items() if k != "patterns"})["patterns"]) > 60


@pytest.mark.parametrize("change, field", [
    ({"type": "other"}, "type"), ({"job_id": ""}, "job_id"), ({"job_id": "x" * 101}, "job_id"),
    ({"job_id": "a b\x00"}, "job_id"), ({"symbols": []}, "symbols"), ({"symbols": "AAPL"}, "symbols"),
    ({"symbols": ["ſPY"]}, "symbols"), ({"symbols": ["A" * 40]}, "symbols"), ({"start_date": "yesterday"}, "start_date"),
    ({"end_date": "9999-01-01"}, "end_date"), ({"end_date": "2019-01-01"}, "end_date"),
    ({"patterns": ["NoSuchPattern"]}, "patterns"), ({"parameters": {"hold_bars": 0}}, "parameters.hold_bars"),
    ({"parameters": {"hold_bars": "five"}}, "parameters.hold_bars"), ({"user_id": "u" * 101}, "user_id"),
])
def test_each_bad_field_is_named(change, field):
    with pytest.raises(JobError) as e:
        validate_job({**GOOD, **change})
    assert e.value.field == field, e.value
    with pytest.raises(JobError) as e:
        validate_job({k: v for k, v in GOOD.items() if k != "end_date"})
    assert str(e.value) == "end_date: required"


def test_not_an_object():
    with pytest.raises(JobError, match="message"):
        validate_job(["a"])
