"""Helpers of the webhook tests: knocks and joins through the services, and endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from lobby import services
from lobby.runtime.process import SERVER_ID
from lobby.webhooks import services as hooks
from tests.conftest import make_token

_n = 0


def conn() -> services.Connection:
    global _n
    _n += 1
    return services.Connection(
        server_id=SERVER_ID,
        connection_id=uuid.uuid4().hex,
        browser_key=f"browser-{_n}",
        client_address=f"10.7.{_n // 250}.{_n % 250}",
    )


def knock(room_name: str = "clinic", name: str = "Ada", **kw: Any) -> Any:
    """A token-less knock; returns the EntryRequest."""
    plan = services.join_plan(room_name=room_name, token=None, name=name)
    return services.entry_request_knock(plan=plan, conn=conn(), **kw).request


def moderator_joins(room_name: str = "clinic", sub: str = "olga") -> Any:
    token = make_token(room=room_name, sub=sub, owner=True)
    plan = services.join_plan(room_name=room_name, token=token)
    c = conn()
    return services.participant_join(plan=plan, conn=c).participant, c


def endpoint(url: str, events: list[str] | None = None, **kw: Any) -> tuple[Any, str]:
    return hooks.webhook_create(url=url, events=events or ["*"], **kw)


def mod_actor() -> services.Actor:
    return services.Actor.api("tests")
