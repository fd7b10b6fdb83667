"""Small helpers shared by the lobby tests (the fixtures themselves live in tests/conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from channels.db import database_sync_to_async

from tests.conftest import make_room, make_token


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
