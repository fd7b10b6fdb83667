"""One error shape for every REST failure: ``{"error": {"code", "message"}}`` (SPEC §4)."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from lobby.errors import AnteroomError, Unavailable

# DRF's own failures (authentication, routing, parsing, content negotiation) and their codes.
DRF_CODES = {
    401: "UNAUTHENTICATED",
    403: "INVALID_PERMISSIONS",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map every error to ``{"error": {"code", "message"}}``, always rendered as JSON (also
    when the request asked for CSV)."""
    request = context.get("request")
    if request is not None:
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = "application/json"
    if isinstance(exc, AnteroomError):
        resp = Response({"error": exc.as_dict()}, status=exc.http_status)
        if exc.http_status == 503:
            resp["Retry-After"] = "5"
        return resp
    if isinstance(exc, (OperationalError, InterfaceError, DatabaseError)):
        resp = Response({"error": Unavailable().as_dict()}, status=503)
        resp["Retry-After"] = "5"
        return resp
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = DRF_CODES.get(response.status_code, "BAD_REQUEST")
    detail = response.data.get("detail") if isinstance(response.data, dict) else None
    message = str(detail) if detail else "Bad request."
    response.data = {"error": {"code": code, "message": message}}
    return response
