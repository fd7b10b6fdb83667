"""Strict JSON decoding for everything a client sends: socket frames, REST bodies, token segments.

``json.loads`` lets the last of two equal keys win (``{"type": "preauth", "type": "join"}``),
accepts ``NaN`` and ``Infinity`` (not JSON: stored as metadata they break the JSON column and
browsers) and raises ``RecursionError`` on deep nesting. :func:`loads` refuses all three with a
:class:`StrictJSONError` (a ``ValueError``) whose message never repeats the input.
"""

from __future__ import annotations

import json
from typing import Any


class StrictJSONError(ValueError):
    """The text is not strict JSON; the message is safe to show (it never echoes the input)."""


class DuplicateKey(StrictJSONError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKey("Duplicate keys are not allowed.")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise StrictJSONError("NaN and Infinity are not JSON.")


def depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests (1 for a scalar), counting no further than ``limit`` + 1."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


# Built once: ``json.loads`` with hooks builds a new decoder on every call.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def loads(text: str | bytes) -> Any:
    """Decode ``text`` strictly; raise :class:`StrictJSONError` (or :class:`DuplicateKey`)."""
    try:
        if isinstance(text, bytes | bytearray):  # as ``json.loads`` reads bytes
            text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")
        elif not isinstance(text, str):
            raise TypeError(f"the JSON object must be str or bytes, not {type(text).__name__}")
        if text.startswith("\ufeff"):
            raise StrictJSONError("Not valid JSON.")  # as ``json.loads``: no BOM in a str
        value = _DECODER.decode(text)
    except StrictJSONError:
        raise
    except RecursionError as exc:
        raise StrictJSONError("JSON nested too deeply.") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise StrictJSONError("Not valid JSON.") from exc
    return value
