"""Validation of events: every rejection names its field."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

import pytest

from workers.ingestion import events as ev

H = lambda ip: "h" * 8  # noqa: E731  (a stand-in keyed hash; privacy has its own tests)


def build(**kw):
    base = dict(user_id=1, entity_id="AAPL", action="view", max_metadata_bytes=256, hash_ip=H)
    base.update(kw)
    return ev.build_event(**base)


def test_valid_event_is_normalised():
    e = build(entity_id=" brk.b ", metadata={"page": "chart"})
    assert e["entity_id"] == "BRK.B" and e["weight"] == ev.ACTIONS["view"]
    assert uuid.UUID(e["event_id"]) and abs(e["ts"] - time.time()) < 5 and e["metadata"] == {"page": "chart"}


def test_caller_event_id_is_kept():
    eid = uuid.uuid4()
    assert build(event_id=eid)["event_id"] == str(eid)


@pytest.mark.parametrize("kw, field", [
    ({"user_id": "4 2"}, "user_id"), ({"user_id": 0}, "user_id"), ({"user_id": True}, "user_id"),
    ({"user_id": 2**64}, "user_id"), ({"entity_id": ""}, "entity_id"), ({"entity_id": "A" * 40}, "entity_id"),
    ({"entity_id": "DROP TABLE"}, "entity_id"), ({"entity_id": 7}, "entity_id"),
    ({"action": "hack"}, "action"), ({"action": None}, "action"),
    ({"metadata": [1, 2]}, "metadata"), ({"metadata": {"x": "y" * 400}}, "metadata"),
    ({"metadata": {"x": float("nan")}}, "metadata"), ({"metadata": {"x": object()}}, "metadata"),
    ({"metadata": {"x": "a\x00b"}}, "metadata"), ({"metadata": {"x": "\ud962"}}, "metadata"),
    ({"event_id": "not-a-uuid"}, "event_id"), ({"ts": time.time() + 86400}, "ts"), ({"ts": "yesterday"}, "ts"),
    ({"ts": datetime(2024, 1, 1)}, "ts"), ({"ts": 12.0}, "ts"),
])
def test_invalid_input_names_the_field(kw, field):
    with pytest.raises(ev.EventValidationError) as info:
        build(**kw)
    assert info.value.field == field
    assert str(info.value).startswith(field + ":")


def test_aware_datetime_ts_accepted():
    when = datetime(2025, 6, 1, tzinfo=timezone.utc)
    assert build(ts=when)["ts"] == when.timestamp()


def test_ip_addresses_in_metadata_are_hashed():
    e = build(metadata={"client": {"ip": "203.0.113.9", "hops": ["2001:db8::1", "n/a"]}, "v": "1.2.3"})
    assert e["metadata"] == {"client": {"ip": "iphash:hhhhhhhh", "hops": ["iphash:hhhhhhhh", "n/a"]}, "v": "1.2.3"}


def test_registry_is_extensible_and_weight_travels():
    ev.register_action("share", 2.5)
    try:
        assert build(action="share")["weight"] == 2.5
        with pytest.raises(ev.EventValidationError):
            ev.register_action("Bad Name", 1)
        with pytest.raises(ev.EventValidationError):
            ev.register_action("huge", 1e9)
    finally:
        ev.ACTIONS.pop("share", None)


def test_worker_revalidation_checks_what_the_client_did():
    good = build()
    assert ev.revalidate(dict(good), max_metadata_bytes=256, hash_ip=H)["event_id"] == good["event_id"]
    for missing in ("event_id", "weight", "ts"):
        bad = {k: v for k, v in good.items() if k != missing}
        with pytest.raises(ev.EventValidationError) as info:
            ev.revalidate(bad, max_metadata_bytes=256, hash_ip=H)
        assert info.value.field == missing
    with pytest.raises(ev.EventValidationError) as info:
        ev.revalidate(dict(good, weight="heavy"), max_metadata_bytes=256, hash_ip=H)
    assert info.value.field == "weight"
    with pytest.raises(ev.EventValidationError):
        ev.revalidate([1], max_metadata_bytes=256, hash_ip=H)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=50),
                     st.binary(max_size=10), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=20), st.integers(), st.none()),
                                     max_size=4))


@settings(max_examples=400, deadline=None)
@given(user_id=st.one_of(st.integers(min_value=1, max_value=10**6), anything),
       entity_id=st.one_of(st.sampled_from(["AAPL", "brk.b", "BTC-USD"]), anything),
       action=st.one_of(st.sampled_from(sorted(ev.ACTIONS)), anything),
       metadata=st.one_of(st.none(), anything), event_id=st.one_of(st.none(), st.uuids(), anything),
       ts=st.one_of(st.none(), anything))
def test_any_input_is_either_a_valid_event_or_a_named_rejection(user_id, entity_id, action, metadata, event_id, ts):
    try:
        e = build(user_id=user_id, entity_id=entity_id, action=action, metadata=metadata, event_id=event_id, ts=ts)
    except ev.EventValidationError as exc:
        assert exc.field in {"user_id", "entity_id", "action", "metadata", "event_id", "ts"} and exc.reason
        return
    # accepted: it survives the worker's check unchanged
    again = ev.revalidate(dict(e), max_metadata_bytes=256, hash_ip=H)
    assert again.pop("metadata_json") == json.dumps(e["metadata"], separators=(",", ":"), ensure_ascii=False)
    assert again == e


def _nested(depth: int) -> dict:
    root = node = {}
    for _ in range(depth - 1):
        node["a"] = {}
        node = node["a"]
    return root


def test_metadata_depth_is_bounded_with_a_named_error():
    build(metadata=_nested(ev.MAX_METADATA_DEPTH))  # the bound itself is fine
    for depth in (ev.MAX_METADATA_DEPTH + 1, 480, 5000):
        with pytest.raises(ev.EventValidationError) as info:
            build(metadata=_nested(depth), max_metadata_bytes=10**6)
        assert info.value.field == "metadata" and "nested deeper than 16" in info.value.reason
    deep_list: list = []
    node = deep_list
    for _ in range(100):
        node.append([])
        node = node[0]
    with pytest.raises(ev.EventValidationError, match="^metadata: nested deeper"):
        build(metadata={"x": deep_list})


@pytest.mark.parametrize("ticker", ["ſPY", "ıbm", "ﬃ", "ＡＡＰＬ", "AAPL\u200b", "SPY\u00a0", "Ⅻ", "ß"])
def test_non_ascii_tickers_are_refused_not_mapped_onto_real_ones(ticker):
    with pytest.raises(ev.EventValidationError) as info:
        build(entity_id=ticker)
    assert info.value.field == "entity_id" and "non-ASCII" in info.value.reason


@pytest.mark.parametrize("entity", ["10.0.0.1", "192.168.001.010", "2001:DB8::1", "0::1", "0::FFFF:10.1.2.3",
                                    "10.0.0.1:8080"])
def test_ip_shaped_entity_ids_are_refused(entity):
    with pytest.raises(ev.EventValidationError) as info:
        build(entity_id=entity)
    assert info.value.field == "entity_id" and "IP address" in info.value.reason


@pytest.mark.parametrize("entity", ["BRK.B", "BTC-USD", "ES=F", "NYSE:AAPL", "1.5", "A:B", "EUR/USD"])
def test_real_ticker_shapes_still_accepted(entity):
    assert build(entity_id=entity)["entity_id"] == entity


def test_a_stream_entry_with_a_null_event_id_is_refused_not_given_a_fresh_id():
    raw = {"event_id": None, "user_id": 1, "entity_id": "AAPL", "action": "view", "weight": 1.0,
           "ts": time.time() - 5}
    with pytest.raises(ev.EventValidationError) as info:
        ev.revalidate(raw, max_metadata_bytes=256, hash_ip=H)
    assert info.value.field == "event_id" and "null" in info.value.reason
    assert uuid.UUID(build(event_id=None)["event_id"])  # track() without an id still stamps one


def test_the_text_backslash_u0000_is_not_a_nul():
    """Found by the stream fuzz: the six characters \\u0000 in a string were refused as a NUL."""
    assert build(metadata={"x": "\\u0000", "y": "\\\\u0000"})["metadata"] == {"x": "\\u0000", "y": "\\\\u0000"}
    for bad in ({"x": "a\x00b"}, {"k\x00": 1}, {"x": "\\\x00"}):
        with pytest.raises(ev.EventValidationError, match="^metadata: NUL"):
            build(metadata=bad)


@pytest.mark.parametrize("value", [16581764142203379214678858137600, True, 1.5, ["x"]])
def test_an_event_id_that_is_not_a_string_is_refused(value):
    """A 32-digit JSON number once parsed as a hex UUID and was stored (found by test_fuzz)."""
    with pytest.raises(ev.EventValidationError, match="event_id: must be a UUID string"):
        ev.check_event_id(value, required=True)
    assert ev.check_event_id(uuid.UUID(int=5)) == "00000000-0000-0000-0000-000000000005"
