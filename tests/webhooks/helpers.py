"""Helpers of the webhook tests: knocks and joins through the services, and endpoints."""

from __future__ import annotations

from typing import Any

from lobby import services
from lobby.runtime.process import SERVER_ID
from lobby.webhooks import services as hooks
from tests import factories


def conn() -> services.Connection:
    """A connection of this process from a browser and an address of its own."""
    return factories.distinct_conn(SERVER_ID)


def knock(room_name: str = "clinic", name: str = "Ada", **kw: Any) -> Any:
    """A token-less knock; returns the EntryRequest."""
    return factories.knock(room_name, name=name, c=conn(), **kw).request


def moderator_joins(room_name: str = "clinic", sub: str = "olga") -> Any:
    c = conn()
    token = factories.make_token(room=room_name, sub=sub, owner=True)
    return factories.join(room_name, token, c).participant, c


def endpoint(url: str, events: list[str] | None = None, **kw: Any) -> tuple[Any, str]:
    return hooks.webhook_create(url=url, events=events or ["*"], **kw)


def mod_actor() -> services.Actor:
    return services.Actor.api("tests")
