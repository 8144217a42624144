"""workers/ingestion/codec.py decodes exactly what json decodes and encodes what json reads back alike."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.ingestion import codec

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_values = st.recursive(_scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
                       max_leaves=20)


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@settings(max_examples=1500, deadline=None)
@given(_values)
def test_loads_equals_json_and_dumps_round_trips(value):
    text = json.dumps(value)
    assert _same(codec.loads(text), json.loads(text))
    if "Infinity" not in text:  # dumps is for validated events: no NaN/Infinity (track() refuses them;
        out = codec.dumps(value)  # orjson would write null)
        assert _same(json.loads(out), json.loads(text))
    event = {"event_id": "x", "metadata": value}
    assert _same(codec.loads(json.dumps(event, ensure_ascii=False)), event | {"metadata": json.loads(text)})


@pytest.mark.parametrize("text", ['{"user_id": 123456789012345678901234567890}', '{"m": {"a": [-99999999999999999999]}}',
                                  '{"x": NaN, "y": -Infinity}', '{"x": 1e400}', '["\\ud800"]', '{"a": 1, "a": 2}',
                                  '{"n": 18446744073709551616}', '{"n": 9223372036854775808}'])
def test_where_orjson_differs_json_decides(text):
    assert _same(codec.loads(text), json.loads(text))


def test_deep_nesting_decodes_as_json_does():
    """600 levels (the validator refuses > 16 after decoding, naming the field): no RecursionError."""
    for leaf in ("1e30", "123456789012345678901234567890"):
        text = '{"metadata": ' + "[" * 600 + leaf + "]" * 600 + "}"
        assert json.dumps(codec.loads(text)) == json.dumps(json.loads(text))


@pytest.mark.parametrize("text", ['{"a": ', "nope", '{"a": 1} x', ""])
def test_bad_json_raises_jsons_error(text):
    with pytest.raises(ValueError) as ours:
        codec.loads(text)
    with pytest.raises(ValueError) as ref:
        json.loads(text)
    assert str(ours.value) == str(ref.value)
