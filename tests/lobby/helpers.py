"""Small helpers shared by the lobby tests (the fixtures themselves live in tests/conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from channels.db import database_sync_to_async

from tests.factories import make_room, make_token


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def craft(
    payload: str | dict[str, Any],
    header: str | dict[str, Any] = '{"alg":"HS256","typ":"JWT"}',
    key: str | bytes | None = None,
    digest: Any = hashlib.sha256,
) -> str:
    """A JWT built byte by byte: the payload and header are sent exactly as given (so they may
    repeat a key or carry types PyJWT would never write), then HMAC-signed with ``key``."""
    from django.conf import settings

    if key is None:
        key = settings.ANTEROOM_SIGNING_KEY
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(header, str):
        header = json.dumps(header)
    if not isinstance(payload, str):
        payload = json.dumps(payload)
    signing_input = f"{b64url(header.encode())}.{b64url(payload.encode())}"
    sig = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(sig)}"


def future(seconds: int = 3600) -> int:
    return int(time.time()) + seconds


async def aroom(**kw: Any):
    return await database_sync_to_async(make_room)(**kw)


async def atoken(**kw: Any) -> str:
    return await database_sync_to_async(make_token)(**kw)


def adb(fn: Any) -> Any:
    """Run a sync ORM callable from an async test: ``await adb(fn)(...)``."""
    return database_sync_to_async(fn)


async def count(model: Any, **filters: Any) -> int:
    return await database_sync_to_async(lambda: model.objects.filter(**filters).count())()


async def closed_with(client: Any, timeout: float = 3) -> int:
    """Read frames until the server closes the socket; return the close code."""
    while True:
        frame = await client.recv(timeout)
        if frame["type"] == "__closed__":
            return int(frame["code"])


# Strict bodies: wrong values derived from a command's schema -------------------------------

# Values of another JSON type than the one a field takes (``None`` only for non-nullable ones).
WRONG_JSON: dict[str, list[Any]] = {
    "string": [5, True, ["x"]],
    "integer": ["1", True, 1.5],
    "boolean": [1, "true", None],
    "array": ["x", {"a": 1}],
    "object": ["x", [1]],
}


def wrong_values(model: Any) -> list[tuple[tuple[str, ...], Any]]:
    """(path, value) for every field of a ``lobby.commands`` model, nested objects included: a
    value the field's schema does not allow by its JSON type, or ``null`` where it is not."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    out: list[tuple[tuple[str, ...], Any]] = []

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> None:
        for name, prop in node.get("properties", {}).items():
            branches = prop.get("anyOf", [prop])
            nullable = {"type": "null"} in branches
            [branch] = [b for b in branches if b != {"type": "null"}]
            if "$ref" in branch:
                branch = defs[branch["$ref"].rsplit("/", 1)[-1]]
            kind = branch.get("type", "string" if "enum" in branch else "object")
            for value in WRONG_JSON[kind]:
                if value is not None or not nullable:
                    out.append(((*path, name), value))
            if not nullable and None not in WRONG_JSON[kind]:
                out.append(((*path, name), None))
            if kind == "object" and "properties" in branch:
                walk(branch, (*path, name))

    walk(schema, ())
    return out


def with_value(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``body`` with ``value`` at ``path`` (missing objects are created)."""
    out = json.loads(json.dumps(body))
    node = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return out


def stored(*models: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``models`` (all fields), to show that a refused call changed nothing."""
    return {
        m.__name__: sorted((tuple(str(v) for v in row) for row in m.objects.values_list()), key=str)
        for m in models
    }
