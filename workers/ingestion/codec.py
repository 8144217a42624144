"""JSON of the stream entries: orjson where it gives exactly what the json module gives, else json.

Why: encoding was ~45 % of the producer's CPU in ``track_many`` and decoding ~25 % of a drain's
Python time (py-spy, BENCHMARKS.md); orjson does both several times faster. Where the two modules
differ, the json module decides, so what is stored and every dead-letter reason stay as they were:
orjson reads an integer beyond 64 bits as a float (json keeps the int), and refuses NaN/Infinity,
1e400 and lone surrogate escapes (json accepts them; the validators then name the field). Any run
of 19 or more digits in the text sends it to json; any orjson error falls back to json.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_DIGITS = re.compile(r"\d{19}")
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def loads(text: str) -> Any:
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)  # the reference (and its error messages)


def dumps(value: Any) -> bytes | str:
    """Compact JSON of a validated event (bytes from orjson; str from json for what orjson refuses,
    e.g. an integer beyond 64 bits in metadata)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return _COMPACT.encode(value)
