"""Helpers for the security and observability tests: service-level knocks, API clients."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

# Imported lazily: conftest modules load before Django is set up.


def conn(address: str = "10.0.0.1", browser: str | None = None) -> Any:
    from lobby import services

    return services.Connection(
        server_id="srv-test",
        connection_id=uuid.uuid4().hex,
        browser_key=browser if browser is not None else uuid.uuid4().hex,
        client_address=address,
    )


def knock(room: Any, *, name: str = "Pat", token: str | None = None, **kw: Any):
    from lobby import services

    plan = services.join_plan(room_name=room.name, token=token, name=name)
    assert plan.level == "lobby"
    return services.entry_request_knock(plan=plan, conn=conn(**kw))


def api_actor() -> Any:
    from lobby import services

    return services.Actor.api("ops")


def decide(room: Any, request_id: Any, outcome: str = "admitted", reason: str = ""):
    from lobby import services

    return services.entry_request_decide(
        room=room, request_id=request_id, actor=api_actor(), outcome=outcome, reason=reason
    )


@pytest.fixture
def api_key(db) -> str:
    from lobby.api.auth import api_key_create

    return api_key_create(name="ops")[1]


@pytest.fixture
def api(client, api_key):
    """The Django test client, authenticated with a REST API key."""
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {api_key}"
    return client
