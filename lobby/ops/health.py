"""Operator endpoints: ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics``."""

from __future__ import annotations

import hmac

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from ..runtime.layerwatch import uses_redis
from ..runtime.process import RUNTIME
from . import metrics


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


async def _redis_ping() -> None:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    client = Redis.from_url(
        settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        await client.ping()
    finally:
        await client.aclose()


def _layer_check() -> str:
    if not uses_redis():
        return "ok"  # the in-memory layer lives in this process
    if RUNTIME.layer.is_down():
        return "down"  # this process's sockets cannot be served until its watcher sees Redis
    try:
        async_to_sync(_redis_ping)()
    except Exception:
        return "down"
    return "ok"


def _database_check() -> str:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
    except Exception:
        return "down"
    return "ok"


def _media_check() -> dict[str, str] | None:
    """The media server's state (None with the mesh: there is no server to ask). Its
    ``ready()`` gives up within a second, like the other checks."""
    from ..media.backend import get_backend

    backend = get_backend()
    if backend.name == "mesh":
        return None
    ok, detail = backend.ready()
    return {"backend": backend.name, "status": "ok" if ok else "down", "detail": detail}


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database and the channel layer both answer; says which part is down.

    ``{"status": "ok"|"unavailable", "checks": {"database": "ok"|"down", "channel_layer":
    "ok"|"down"[, "media": "ok"|"down"]}[, "media": {"backend": "janus", "status": ...,
    "detail": "media server (janus) unreachable"}]}``: the media check is there only with a
    media server (``ANTEROOM_MEDIA=janus``). 503 with ``Retry-After`` when a part is down.
    Each check gives up after about a second (database: ``connect_timeout``), so a load
    balancer's probe never hangs.
    """
    checks = {"database": _database_check(), "channel_layer": _layer_check()}
    media = _media_check()
    if media is not None:
        checks["media"] = media["status"]
    ok = all(v == "ok" for v in checks.values())
    body: dict[str, object] = {"status": "ok" if ok else "unavailable", "checks": checks}
    if media is not None:
        body["media"] = media
    resp = JsonResponse(body, status=200 if ok else 503)
    if not ok:
        resp["Retry-After"] = "5"
    return resp


def _authorized(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: 404 unless ``ANTEROOM_METRICS_TOKEN`` is set; 401 without it."""
    token = settings.ANTEROOM_METRICS_TOKEN
    if not token:
        raise Http404()
    if not _authorized(request, token):
        resp = HttpResponse("Unauthorized.\n", status=401, content_type="text/plain")
        resp["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return resp
    return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
