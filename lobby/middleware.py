"""Backing-service outages as 503s, never 500s (SPEC §3 ``UNAVAILABLE``).

* While ``layerwatch`` counts the channel layer (Redis) down, REST writes answer 503
  ``UNAVAILABLE`` with ``Retry-After`` instead of storing a change nobody would hear of.
* A database error that escapes a view (a page, the admin) becomes a 503 with ``Retry-After``;
  the REST API maps its own through ``lobby.api.exceptions.exception_handler``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from . import layerwatch
from .errors import Unavailable

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
        and layerwatch.is_down()
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
