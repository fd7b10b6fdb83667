"""API keys and REST authentication (``Authorization: Bearer <api key>``)."""

from __future__ import annotations

import hmac
import secrets

from rest_framework import exceptions as drf_exc
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from lobby import services
from lobby.models import ApiKey

KEY_PREFIX = "ak_"


# Keys and authentication ----------------------------------------------------------------------


def api_key_create(*, name: str) -> tuple[ApiKey, str]:
    """Create an API key; returns the row and the key, which is never stored or shown again."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = f"{KEY_PREFIX}{prefix}.{secret}"
    row = ApiKey.objects.create(name=name, prefix=prefix, key_hash=services.hash_secret(key))
    return row, key


def api_key_check(raw: str) -> ApiKey | None:
    if not raw.startswith(KEY_PREFIX) or "." not in raw or len(raw) > 200:
        return None
    prefix = raw[len(KEY_PREFIX) :].split(".", 1)[0]
    row = ApiKey.objects.filter(prefix=prefix, revoked=False).first()
    if row is None or not hmac.compare_digest(row.key_hash, services.hash_secret(raw)):
        return None
    return row


class ApiKeyUser:
    """The authenticated caller of a REST request."""

    is_authenticated = True

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    @property
    def actor(self) -> services.Actor:
        return services.Actor.api(self.key.name)


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyUser, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw:
            raise drf_exc.AuthenticationFailed("Use Authorization: Bearer <api key>.")
        row = api_key_check(raw.strip())
        if row is None:
            raise drf_exc.AuthenticationFailed("Invalid API key.")
        return ApiKeyUser(row), row

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"
