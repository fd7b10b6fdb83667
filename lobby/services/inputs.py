"""Checks of client-chosen text the services store (names, metadata)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import BadRequest
from ..text import is_blank

MAX_METADATA_BYTES = 4096
MAX_NAME_CHARS = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_name(value: Any, *, default: str = "") -> str:
    """A display name: a string of at most 100 characters without control characters; one
    with no visible character counts as empty (``default``)."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadRequest("name must be a string.")
    value = value.strip()
    if len(value) > MAX_NAME_CHARS:
        raise BadRequest(f"name must be at most {MAX_NAME_CHARS} characters.")
    if _CONTROL.search(value):
        raise BadRequest("name must not contain control characters.")
    if is_blank(value):
        return default  # nothing visible (zero-width, fillers...) is no name (lobby/text.py)
    return value


def clean_metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("metadata must be a JSON object.")
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
    except ValueError as exc:  # NaN or Infinity: not JSON
        raise BadRequest("metadata must be plain JSON.") from exc
    if size > MAX_METADATA_BYTES:
        raise BadRequest("metadata must be at most 4 KiB.")
    return value
