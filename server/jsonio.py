"""JSON for request and response bodies: orjson's speed, the standard library's leniency.

orjson parses a KServe JSON request about ten times faster than ``json`` (2.25 -> 0.21 ms
for the demo model's three inputs here), but it refuses the ``NaN`` and ``Infinity``
tokens that Python's ``json.dumps`` writes, and clients built on it (tritonclient among
them) send those. A body orjson refuses is parsed again by the standard library, so such
values reach the checks that name them ("holds NaN or inf"), and a malformed body gets
``json``'s error message; valid bodies never pay twice.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | memoryview) -> Any:
    """Parse ``data``; raises ``json.JSONDecodeError`` or ``UnicodeDecodeError``."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as refused:
        try:
            return json.loads(bytes(data))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise
        except (RecursionError, ValueError):
            # What json fails on without calling it a decode error: nesting past the
            # interpreter's recursion limit, an integer of more than 4300 digits. orjson's
            # message names the problem ("depth limit exceeded", "number is infinity").
            raise refused from None


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (a non-finite float becomes ``null``, never a bare NaN)."""
    return orjson.dumps(obj)
