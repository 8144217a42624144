"""JSON of the stream entries: orjson where it gives exactly what the json module gives, else json.

Why: encoding was ~45 % of the producer's CPU in ``track_many`` and decoding ~25 % of a drain's
Python time (py-spy, BENCHMARKS.md); orjson does both several times faster. Where the two modules
differ, the json module decides, so what is stored and every dead-letter reason stay as they were:
orjson reads an integer beyond 64 bits as a float (json keeps the int), and refuses NaN/Infinity,
1e400 and lone surrogate escapes (json accepts them; the validators then name the field). So a
decoded value holding a float of magnitude >= 2**63 is decoded again by json (a regex guard on the
text cost more than json.loads itself), and any orjson error falls back to json.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_COMPACT = json.JSONEncoder(separators=(",", ":"))
_BIG = 2.0 ** 63


def _has_big_float(value: Any) -> bool:
    """A float orjson may have made of an integer json would keep exact (iterative: metadata can be
    nested hundreds of levels deep before the validator refuses it, and must get that far)."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is float:
            if not -_BIG < v < _BIG:
                return True
        elif t is dict:
            stack.extend(v.values())
        elif t is list:
            stack.extend(v)
    return False


def loads(text: str) -> Any:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # the reference (and its error messages)
    if type(value) is dict:  # an event: flat but for its metadata (usually empty)
        return json.loads(text) if _event_has_big_float(value) else value
    if type(value) is list:  # a pack of events
        for item in value:
            if _event_has_big_float(item) if type(item) is dict else _has_big_float(item):
                return json.loads(text)
        return value
    return json.loads(text) if _has_big_float(value) else value


def _event_has_big_float(event: dict) -> bool:
    for v in event.values():
        t = type(v)
        if (t is float and not -_BIG < v < _BIG) or ((t is dict or t is list) and v and _has_big_float(v)):
            return True
    return False


def dumps(value: Any) -> bytes | str:
    """Compact JSON of a validated event (bytes from orjson; str from json for what orjson refuses,
    e.g. an integer beyond 64 bits in metadata). Validated means finite floats only: orjson would
    write NaN/Infinity as null, and track() refuses them before this."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return _COMPACT.encode(value)
