"""HTTP middleware: request ids with one access-log line each, and outages as 503s.

``RequestIdMiddleware`` gives each request an id (``X-Request-ID``, and ``request_id`` on every
log line written for it) and logs one ``anteroom.http`` line per request.

``BackendUnavailableMiddleware``: backing-service outages as 503s, never 500s (SPEC §3
``UNAVAILABLE``).

* While the layer watcher (``RUNTIME.layer``) counts the channel layer (Redis) down, REST
  writes answer 503 ``UNAVAILABLE`` with ``Retry-After`` instead of storing a change nobody
  would hear of.
* A database error that escapes a view (a page, the admin) becomes a 503 with ``Retry-After``;
  the REST API maps its own through ``lobby.api.exceptions.exception_handler``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from ..errors import Unavailable
from ..runtime.process import RUNTIME
from .logs import request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
access_log = logging.getLogger("anteroom.http")


def _request_id(request: HttpRequest) -> str:
    """Reuse a sane ``X-Request-ID`` from a proxy, or make one."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    return incoming if _INCOMING_ID.fullmatch(incoming) else uuid.uuid4().hex


def _log_access(request: HttpRequest, response: HttpResponseBase, started: float) -> None:
    access_log.info(
        "%s %s %s",
        request.method,
        request.get_full_path(),  # redacted by RedactFilter (``?t=`` tokens)
        response.status_code,
        extra={
            "method": request.method,
            "path": request.get_full_path(),
            "status": response.status_code,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )


class RequestIdMiddleware:
    """Give each HTTP request an id: in the context (for logs), and as ``X-Request-ID``.

    Also writes one access-log line per request (logger ``anteroom.http``).
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        rid = _request_id(request)
        token = request_id_var.set(rid)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            assert isinstance(response, HttpResponseBase)
            response[REQUEST_ID_HEADER] = rid
            _log_access(request, response, started)
            return response
        finally:
            request_id_var.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        rid = _request_id(request)
        token = request_id_var.set(rid)
        started = time.monotonic()
        try:
            response = await self.get_response(request)  # type: ignore[misc]
            response[REQUEST_ID_HEADER] = rid
            _log_access(request, response, started)
            return response
        finally:
            request_id_var.reset(token)


# Outages ---------------------------------------------------------------------------------------

RETRY_AFTER = "5"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _unavailable(request: HttpRequest, message: str | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        resp: HttpResponse = JsonResponse({"error": Unavailable(message).as_dict()}, status=503)
    else:
        resp = HttpResponse(
            "Anteroom is briefly unavailable; retry in a few seconds.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    resp["Retry-After"] = RETRY_AFTER
    return resp


def _layer_refuses(request: HttpRequest) -> bool:
    return (
        request.method not in SAFE_METHODS
        and request.path.startswith("/api/")
        and RUNTIME.layer.is_down()
    )


class BackendUnavailableMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        if _layer_refuses(request):
            return _unavailable(request, "The event service is unavailable; retry shortly.")
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if _layer_refuses(request):
            return _unavailable(request, "The event service is unavailable; retry shortly.")
        response: Awaitable[HttpResponseBase] = self.get_response(request)
        return await response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            return _unavailable(request)
        return None
