"""Health endpoints (pages live in ``pages.py``)."""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


async def _layer_roundtrip() -> None:
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "ping", "n": uuid.uuid4().hex})
    await asyncio.wait_for(layer.receive(channel), timeout=2)


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database and the channel layer both answer; says which part is down."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "down"
    try:
        async_to_sync(_layer_roundtrip)()
        checks["channel_layer"] = "ok"
    except Exception:
        checks["channel_layer"] = "down"
    ok = all(v == "ok" for v in checks.values())
    resp = JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )
    if not ok:
        resp["Retry-After"] = "5"
    return resp
